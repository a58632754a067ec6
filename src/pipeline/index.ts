/**
 * Streaming pipelines: `source | filter | filter > dest`, without a shell.
 *
 * Children are connected directly (each child's stdout is handed to the next child as its stdin; node's
 * stdio "pipes" are UNIX socketpairs), so node only reads the last stage's output, hashes it and writes
 * it: memory stays bounded whatever the size. The output goes to `dest.partial`, is fsync'd and then renamed to `dest`; on any failure
 * (a stage exiting non-zero or killed, the source stream failing, the disk filling up, an abort) every
 * child is killed and the partial file removed, so a file at `dest` is always complete.
 *
 * run.ts has the steps of a run; supervise.ts the children (start, teardown, which failure is the
 * cause); writer.ts and partial.ts the output file; hash.ts hashing and what this process wrote.
 */
export { filterThrough } from './filter';
export { hashFile, unchangedSinceWritten } from './hash';
export { syncFileSystem } from './partial';
export { runPipeline, type PipelineOptions, type PipelineResult } from './run';
export { zstdHasRowMatchFinderFlag, zstdStage, type Stage, type ZstdTuning } from './stage';
export { zstdStoredFrame } from './zstd-frame';
