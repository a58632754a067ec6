/**
 * age encryption in the standard format (https://age-encryption.org/v1): keys in ./age-keys, the
 * STREAM codec and file encryption/decryption in ./age-stream. Importers use this module.
 */
export {
  ageDecrypter,
  ageRecipientProblem,
  generateIdentity,
  identityRecipients,
  readIdentity,
  recipientsFor,
  type AgeDecrypter,
  type EncryptionSettings,
} from './age-keys';
export { ageSealer, decryptStream, decryptToFile, encryptFile, openAgeStream, plausibleAgeSize } from './age-stream';
