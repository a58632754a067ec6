/** One stored file of a session, as its manifest lists it. */
export interface Artifact {
  /** Path relative to the backup root (local dir or bucket prefix), '/'-separated. */
  path: string;
  bytes: number;
  /** Hex SHA-256 of the stored (encrypted) bytes. */
  sha256: string;
  /** Verification of the cloud copy at completion (absent: no cloud copy). */
  cloud?: { key: string; verified: boolean };
}
