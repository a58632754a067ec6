// Creates the local stack's bucket if it does not exist (idempotent). Used by scripts/stack.sh.
'use strict';
// Pinned SDK on Node 20 is supported; its notice about future releases is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { S3Client, CreateBucketCommand, HeadBucketCommand } = require('@aws-sdk/client-s3');

async function main() {
  const s3 = new S3Client({
    endpoint: process.env.S3_ENDPOINT,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  });
  const Bucket = process.env.S3_BUCKET;
  try {
    await s3.send(new HeadBucketCommand({ Bucket }));
  } catch (err) {
    if (err?.$metadata?.httpStatusCode !== 404) throw err;
    await s3.send(new CreateBucketCommand({ Bucket }));
    console.error(`created bucket ${Bucket}`);
  }
}
main().catch((err) => {
  console.error(`cannot ensure bucket ${process.env.S3_BUCKET}: ${err.name}: ${err.message}`);
  process.exit(1);
});
