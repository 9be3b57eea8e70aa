// File names, SPEC section 3: <blob path>/<name>_v4_<workspace_id>_<sequence>.parquet (20-digit sequences).
import { SCHEMAS, type FileType, type SchemaVersion } from './schemas.js';

export const pad20 = (n: number) => String(n).padStart(20, '0');

export function fileName(fileType: FileType, version: SchemaVersion, workspaceId: number, sequence: number, part?: number): string {
  const name = SCHEMAS[fileType].name;
  const seqs = part === undefined ? pad20(sequence) : `${pad20(sequence)}_${pad20(part)}`;
  return version === 'v1' ? `${name}_${seqs}.parquet` : `${name}_v4_${workspaceId}_${seqs}.parquet`;
}

export function blobName(blobPath: string, file: string): string {
  return blobPath ? `${blobPath}/${file}` : file;
}
