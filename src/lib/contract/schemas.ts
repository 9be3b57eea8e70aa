// contract/: SPEC as data: file types and columns (this file), the ingest schemas derived from
// them, file names and route parameters. Imports only platform/.
//
// SPEC section 2 as data: the one place a file type's columns are listed.
// The parquet schema (parquet/writer.ts) and the ingest validation (ingest-schemas.ts) are derived from it.

export type ColumnType = 'INTEGER' | 'STRING' | 'BOOLEAN' | 'TIMESTAMP';

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  readonly required: boolean;
}

export const FILE_TYPES = [
  'deliveries',
  'metrics',
  'subjects',
  'outputs',
  'content',
  'people',
  'attributes',
  'events',
] as const;
export type FileType = (typeof FILE_TYPES)[number];

export interface FileSchema {
  readonly fileType: FileType;
  /** The `<name>` token of file names and of the ingest route. */
  readonly name: string;
  /** Columns of the primary key (attributes has two). */
  readonly primaryKey: readonly string[];
  /** v4 columns, in contract order. */
  readonly columns: readonly Column[];
}

const req = (name: string, type: ColumnType): Column => ({ name, type, required: true });
const opt = (name: string, type: ColumnType): Column => ({ name, type, required: false });

export const SCHEMAS: Readonly<Record<FileType, FileSchema>> = {
  deliveries: {
    fileType: 'deliveries',
    name: 'deliveries',
    primaryKey: ['delivery_id'],
    columns: [
      req('workspace_id', 'INTEGER'),
      req('delivery_id', 'STRING'),
      opt('internal_customer_id', 'STRING'),
      opt('subject_id', 'STRING'),
      opt('event_id', 'STRING'),
      req('delivery_type', 'STRING'),
      opt('campaign_id', 'INTEGER'),
      opt('action_id', 'INTEGER'),
      opt('newsletter_id', 'INTEGER'),
      opt('content_id', 'INTEGER'),
      opt('trigger_id', 'INTEGER'),
      req('created_at', 'TIMESTAMP'),
      opt('transactional_message_id', 'INTEGER'),
      req('seq_num', 'INTEGER'),
    ],
  },
  metrics: {
    fileType: 'metrics',
    name: 'metrics',
    primaryKey: ['event_id'],
    columns: [
      req('event_id', 'STRING'),
      req('workspace_id', 'INTEGER'),
      req('delivery_id', 'STRING'),
      req('metric', 'STRING'),
      req('created_at', 'TIMESTAMP'),
      opt('reason', 'STRING'),
      opt('link_id', 'INTEGER'),
      opt('link_url', 'STRING'),
      req('seq_num', 'INTEGER'),
    ],
  },
  subjects: {
    fileType: 'subjects',
    name: 'subjects',
    primaryKey: ['subject_name'],
    columns: [
      req('workspace_id', 'INTEGER'),
      req('subject_name', 'STRING'),
      opt('internal_customer_id', 'STRING'),
      req('campaign_type', 'STRING'),
      req('campaign_id', 'INTEGER'),
      opt('event_id', 'STRING'),
      opt('trigger_id', 'INTEGER'),
      req('started_campaign_at', 'TIMESTAMP'),
      req('created_at', 'TIMESTAMP'),
      req('seq_num', 'INTEGER'),
    ],
  },
  outputs: {
    fileType: 'outputs',
    name: 'outputs',
    primaryKey: ['output_id'],
    columns: [
      req('workspace_id', 'INTEGER'),
      req('output_id', 'STRING'),
      req('subject_name', 'STRING'),
      req('output_type', 'STRING'),
      req('action_id', 'INTEGER'),
      req('explanation', 'STRING'),
      opt('delivery_id', 'STRING'),
      opt('draft', 'BOOLEAN'),
      opt('link_tracked', 'BOOLEAN'),
      opt('split_test_index', 'INTEGER'),
      opt('delay_ends_at', 'TIMESTAMP'),
      opt('branch_index', 'INTEGER'),
      opt('manual_segment_id', 'INTEGER'),
      opt('add_to_manual_segment', 'BOOLEAN'),
      req('created_at', 'TIMESTAMP'),
      req('seq_num', 'INTEGER'),
    ],
  },
  content: {
    fileType: 'content',
    name: 'delivery_contents',
    primaryKey: ['delivery_id'],
    columns: [
      req('workspace_id', 'INTEGER'),
      req('delivery_id', 'STRING'),
      opt('campaign_id', 'INTEGER'),
      opt('action_id', 'INTEGER'),
      opt('newsletter_id', 'INTEGER'),
      opt('content_id', 'INTEGER'),
      opt('from', 'STRING'),
      opt('reply_to', 'STRING'),
      opt('bcc', 'STRING'),
      opt('recipient', 'STRING'),
      opt('subject', 'STRING'),
      opt('body', 'STRING'),
      opt('body_amp', 'STRING'),
      opt('body_plain', 'STRING'),
      opt('preheader', 'STRING'),
      opt('url', 'STRING'),
      opt('method', 'STRING'),
      opt('headers', 'STRING'),
      opt('type', 'STRING'),
    ],
  },
  people: {
    fileType: 'people',
    name: 'people',
    primaryKey: ['internal_customer_id'],
    columns: [
      req('workspace_id', 'INTEGER'),
      req('customer_id', 'STRING'),
      req('internal_customer_id', 'STRING'),
      opt('deleted', 'BOOLEAN'),
      opt('suppressed', 'BOOLEAN'),
      req('created_at', 'TIMESTAMP'),
      req('updated_at', 'TIMESTAMP'),
      opt('email_addr', 'STRING'),
    ],
  },
  attributes: {
    fileType: 'attributes',
    name: 'attributes',
    primaryKey: ['internal_customer_id', 'attribute_name'],
    columns: [
      req('workspace_id', 'INTEGER'),
      req('internal_customer_id', 'STRING'),
      req('attribute_name', 'STRING'),
      opt('attribute_value', 'STRING'),
      req('timestamp', 'TIMESTAMP'),
    ],
  },
  events: {
    fileType: 'events',
    name: 'events',
    primaryKey: ['event_id'],
    columns: [
      req('workspace_id', 'INTEGER'),
      req('event_id', 'STRING'),
      opt('internal_customer_id', 'STRING'),
      req('name', 'STRING'),
      req('type', 'STRING'),
      opt('data', 'STRING'),
      req('timestamp', 'TIMESTAMP'),
      req('seq_num', 'INTEGER'),
    ],
  },
};

export type SchemaVersion = 'v1' | 'v4';
export const SCHEMA_VERSIONS: readonly SchemaVersion[] = ['v1', 'v4'];

/** File types a v1 (legacy) integration knows. */
export const V1_FILE_TYPES: readonly FileType[] = ['deliveries', 'metrics', 'subjects', 'outputs', 'people'];

/** Columns columns written for a schema version: v1 files have no workspace_id and no seq_num. */
export function columnsFor(fileType: FileType, version: SchemaVersion): readonly Column[] {
  const { columns } = SCHEMAS[fileType];
  if (version === 'v4') return columns;
  return columns.filter((c) => c.name !== 'workspace_id' && c.name !== 'seq_num');
}

export function fileTypeByName(name: string): FileType | undefined {
  return FILE_TYPES.find((t) => SCHEMAS[t].name === name);
}

/** Columns the ingest API takes for a record: all but workspace_id (from the route) and seq_num (assigned). */
export function ingestColumns(fileType: FileType): readonly Column[] {
  return SCHEMAS[fileType].columns.filter((c) => c.name !== 'workspace_id' && c.name !== 'seq_num');
}

/** Whether exported rows of this type carry a seq_num column. */
export function hasSeqNum(fileType: FileType): boolean {
  return SCHEMAS[fileType].columns.some((c) => c.name === 'seq_num');
}

/**
 * The column a row's person is found in (SPEC section 4, anonymization): deliveries, subjects and
 * events belong to their internal_customer_id, content to the person of its delivery_id; undefined:
 * the type carries no person.
 */
export function ownerColumn(fileType: FileType): 'internal_customer_id' | 'delivery_id' | undefined {
  if (fileType === 'content') return 'delivery_id';
  if (fileType === 'deliveries' || fileType === 'subjects' || fileType === 'events') return 'internal_customer_id';
  return undefined;
}
