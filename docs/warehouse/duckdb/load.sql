-- Load exported parquet files (schema v4) into DuckDB: one table per file type, merged per primary key
-- with the rules of SPEC section 5.4. Needs DuckDB >= 1.4 (MERGE INTO).
--
--   duckdb warehouse.duckdb -cmd "SET VARIABLE export_path = '/data/export/warehouse'" < load.sql
--
-- export_path is the folder that holds the files of ONE workspace (the integration's blob path): a
-- local folder, or az://<container>/<blob path> with DuckDB's azure extension and a secret.
-- Re-runnable: files already merged are listed in export_loaded_files and skipped, so run it after
-- every sync (or on a schedule) against the same database file; expiring loaded files is safe.
-- Files of a type are merged in sequence order (20-digit sequences: name order = export order).

SELECT CASE WHEN getvariable('export_path') IS NULL
  THEN error('load.sql: set the folder first, e.g. SET VARIABLE export_path = ''/data/export'';') END;
SET VARIABLE export_run_started = get_current_timestamp();

-- Target tables: exactly the SPEC section 2 columns, in order. INTEGER = BIGINT, STRING = VARCHAR,
-- TIMESTAMP = TIMESTAMPTZ (the files' timestamps are UTC milliseconds).
CREATE TABLE IF NOT EXISTS deliveries (
  workspace_id BIGINT NOT NULL, delivery_id VARCHAR NOT NULL PRIMARY KEY, internal_customer_id VARCHAR,
  subject_id VARCHAR, event_id VARCHAR, delivery_type VARCHAR NOT NULL, campaign_id BIGINT, action_id BIGINT,
  newsletter_id BIGINT, content_id BIGINT, trigger_id BIGINT, created_at TIMESTAMPTZ NOT NULL,
  transactional_message_id BIGINT, seq_num BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (
  event_id VARCHAR NOT NULL PRIMARY KEY, workspace_id BIGINT NOT NULL, delivery_id VARCHAR NOT NULL,
  metric VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL, reason VARCHAR, link_id BIGINT, link_url VARCHAR,
  seq_num BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
  workspace_id BIGINT NOT NULL, subject_name VARCHAR NOT NULL PRIMARY KEY, internal_customer_id VARCHAR,
  campaign_type VARCHAR NOT NULL, campaign_id BIGINT NOT NULL, event_id VARCHAR, trigger_id BIGINT,
  started_campaign_at TIMESTAMPTZ NOT NULL, created_at TIMESTAMPTZ NOT NULL, seq_num BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS outputs (
  workspace_id BIGINT NOT NULL, output_id VARCHAR NOT NULL PRIMARY KEY, subject_name VARCHAR NOT NULL,
  output_type VARCHAR NOT NULL, action_id BIGINT NOT NULL, explanation VARCHAR NOT NULL, delivery_id VARCHAR,
  draft BOOLEAN, link_tracked BOOLEAN, split_test_index BIGINT, delay_ends_at TIMESTAMPTZ, branch_index BIGINT,
  manual_segment_id BIGINT, add_to_manual_segment BOOLEAN, created_at TIMESTAMPTZ NOT NULL,
  seq_num BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS delivery_contents (
  workspace_id BIGINT NOT NULL, delivery_id VARCHAR NOT NULL PRIMARY KEY, campaign_id BIGINT, action_id BIGINT,
  newsletter_id BIGINT, content_id BIGINT, "from" VARCHAR, reply_to VARCHAR, bcc VARCHAR, recipient VARCHAR,
  subject VARCHAR, body VARCHAR, body_amp VARCHAR, body_plain VARCHAR, preheader VARCHAR, url VARCHAR,
  method VARCHAR, headers VARCHAR, "type" VARCHAR);
CREATE TABLE IF NOT EXISTS people (
  workspace_id BIGINT NOT NULL, customer_id VARCHAR NOT NULL, internal_customer_id VARCHAR NOT NULL PRIMARY KEY,
  deleted BOOLEAN, suppressed BOOLEAN, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
  email_addr VARCHAR);
CREATE TABLE IF NOT EXISTS attributes (
  workspace_id BIGINT NOT NULL, internal_customer_id VARCHAR NOT NULL, attribute_name VARCHAR NOT NULL,
  attribute_value VARCHAR, "timestamp" TIMESTAMPTZ NOT NULL, PRIMARY KEY (internal_customer_id, attribute_name));
CREATE TABLE IF NOT EXISTS events (
  workspace_id BIGINT NOT NULL, event_id VARCHAR NOT NULL PRIMARY KEY, internal_customer_id VARCHAR,
  name VARCHAR NOT NULL, "type" VARCHAR NOT NULL, data VARCHAR, "timestamp" TIMESTAMPTZ NOT NULL,
  seq_num BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS export_loaded_files (
  file_name VARCHAR NOT NULL PRIMARY KEY, table_name VARCHAR NOT NULL, row_count BIGINT NOT NULL,
  loaded_at TIMESTAMPTZ NOT NULL);

-- The not yet loaded files of one type, in sequence order ([] when there are none).
CREATE OR REPLACE TEMP MACRO export_new_files(name) AS (
  SELECT coalesce(list(g.file ORDER BY g.file), [])
  FROM glob(getvariable('export_path') || '/' || name || '_v4_*.parquet') g
  WHERE NOT EXISTS (SELECT 1 FROM export_loaded_files l WHERE l.file_name = parse_filename(g.file)));

-- Each block: list the new files, read them into `batch` (empty, with the table's columns, when
-- there are none), keep one row per key within the batch, MERGE it into the table, log the files.
-- One transaction per block: a failure leaves the table and the log as they were.

-- deliveries: the row with the highest seq_num.
BEGIN TRANSACTION;
SET VARIABLE export_files = export_new_files('deliveries');
CREATE OR REPLACE TEMP TABLE batch AS FROM query(CASE WHEN len(getvariable('export_files')) > 0
  THEN 'FROM read_parquet(getvariable(''export_files''), filename = true, file_row_number = true)'
  ELSE 'SELECT *, NULL::VARCHAR AS filename, NULL::BIGINT AS file_row_number FROM deliveries LIMIT 0' END);
MERGE INTO deliveries t
USING (SELECT workspace_id, delivery_id, internal_customer_id, subject_id, event_id, delivery_type, campaign_id,
         action_id, newsletter_id, content_id, trigger_id, created_at, transactional_message_id, seq_num
       FROM batch
       QUALIFY row_number() OVER (PARTITION BY delivery_id ORDER BY seq_num DESC, filename DESC, file_row_number DESC) = 1) s
ON t.delivery_id = s.delivery_id
WHEN MATCHED AND s.seq_num > t.seq_num THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
INSERT INTO export_loaded_files SELECT parse_filename(filename), 'deliveries', count(*), now() FROM batch GROUP BY filename;
COMMIT;

-- metrics: the row with the highest seq_num (initial-sync parts and later files alike).
BEGIN TRANSACTION;
SET VARIABLE export_files = export_new_files('metrics');
CREATE OR REPLACE TEMP TABLE batch AS FROM query(CASE WHEN len(getvariable('export_files')) > 0
  THEN 'FROM read_parquet(getvariable(''export_files''), filename = true, file_row_number = true)'
  ELSE 'SELECT *, NULL::VARCHAR AS filename, NULL::BIGINT AS file_row_number FROM metrics LIMIT 0' END);
MERGE INTO metrics t
USING (SELECT event_id, workspace_id, delivery_id, metric, created_at, reason, link_id, link_url, seq_num
       FROM batch
       QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY seq_num DESC, filename DESC, file_row_number DESC) = 1) s
ON t.event_id = s.event_id
WHEN MATCHED AND s.seq_num > t.seq_num THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
INSERT INTO export_loaded_files SELECT parse_filename(filename), 'metrics', count(*), now() FROM batch GROUP BY filename;
COMMIT;

-- subjects: the row with the highest seq_num.
BEGIN TRANSACTION;
SET VARIABLE export_files = export_new_files('subjects');
CREATE OR REPLACE TEMP TABLE batch AS FROM query(CASE WHEN len(getvariable('export_files')) > 0
  THEN 'FROM read_parquet(getvariable(''export_files''), filename = true, file_row_number = true)'
  ELSE 'SELECT *, NULL::VARCHAR AS filename, NULL::BIGINT AS file_row_number FROM subjects LIMIT 0' END);
MERGE INTO subjects t
USING (SELECT workspace_id, subject_name, internal_customer_id, campaign_type, campaign_id, event_id, trigger_id,
         started_campaign_at, created_at, seq_num
       FROM batch
       QUALIFY row_number() OVER (PARTITION BY subject_name ORDER BY seq_num DESC, filename DESC, file_row_number DESC) = 1) s
ON t.subject_name = s.subject_name
WHEN MATCHED AND s.seq_num > t.seq_num THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
INSERT INTO export_loaded_files SELECT parse_filename(filename), 'subjects', count(*), now() FROM batch GROUP BY filename;
COMMIT;

-- outputs: the row with the highest seq_num.
BEGIN TRANSACTION;
SET VARIABLE export_files = export_new_files('outputs');
CREATE OR REPLACE TEMP TABLE batch AS FROM query(CASE WHEN len(getvariable('export_files')) > 0
  THEN 'FROM read_parquet(getvariable(''export_files''), filename = true, file_row_number = true)'
  ELSE 'SELECT *, NULL::VARCHAR AS filename, NULL::BIGINT AS file_row_number FROM outputs LIMIT 0' END);
MERGE INTO outputs t
USING (SELECT workspace_id, output_id, subject_name, output_type, action_id, explanation, delivery_id, draft,
         link_tracked, split_test_index, delay_ends_at, branch_index, manual_segment_id, add_to_manual_segment,
         created_at, seq_num
       FROM batch
       QUALIFY row_number() OVER (PARTITION BY output_id ORDER BY seq_num DESC, filename DESC, file_row_number DESC) = 1) s
ON t.output_id = s.output_id
WHEN MATCHED AND s.seq_num > t.seq_num THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
INSERT INTO export_loaded_files SELECT parse_filename(filename), 'outputs', count(*), now() FROM batch GROUP BY filename;
COMMIT;

-- delivery_contents (no seq_num): the row from the latest file.
BEGIN TRANSACTION;
SET VARIABLE export_files = export_new_files('delivery_contents');
CREATE OR REPLACE TEMP TABLE batch AS FROM query(CASE WHEN len(getvariable('export_files')) > 0
  THEN 'FROM read_parquet(getvariable(''export_files''), filename = true, file_row_number = true)'
  ELSE 'SELECT *, NULL::VARCHAR AS filename, NULL::BIGINT AS file_row_number FROM delivery_contents LIMIT 0' END);
MERGE INTO delivery_contents t
USING (SELECT workspace_id, delivery_id, campaign_id, action_id, newsletter_id, content_id, "from", reply_to, bcc,
         recipient, subject, body, body_amp, body_plain, preheader, url, method, headers, "type"
       FROM batch
       QUALIFY row_number() OVER (PARTITION BY delivery_id ORDER BY filename DESC, file_row_number DESC) = 1) s
ON t.delivery_id = s.delivery_id
WHEN MATCHED THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
INSERT INTO export_loaded_files SELECT parse_filename(filename), 'delivery_contents', count(*), now() FROM batch GROUP BY filename;
COMMIT;

-- people (no seq_num): the row with the latest updated_at (on a tie, the later file).
BEGIN TRANSACTION;
SET VARIABLE export_files = export_new_files('people');
CREATE OR REPLACE TEMP TABLE batch AS FROM query(CASE WHEN len(getvariable('export_files')) > 0
  THEN 'FROM read_parquet(getvariable(''export_files''), filename = true, file_row_number = true)'
  ELSE 'SELECT *, NULL::VARCHAR AS filename, NULL::BIGINT AS file_row_number FROM people LIMIT 0' END);
MERGE INTO people t
USING (SELECT workspace_id, customer_id, internal_customer_id, deleted, suppressed, created_at, updated_at, email_addr
       FROM batch
       QUALIFY row_number() OVER (PARTITION BY internal_customer_id ORDER BY updated_at DESC, filename DESC, file_row_number DESC) = 1) s
ON t.internal_customer_id = s.internal_customer_id
WHEN MATCHED AND s.updated_at >= t.updated_at THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
INSERT INTO export_loaded_files SELECT parse_filename(filename), 'people', count(*), now() FROM batch GROUP BY filename;
COMMIT;

-- attributes (no seq_num): per (person, attribute) the row with the latest timestamp (on a tie, the
-- later file); a null attribute_value means the attribute was removed, so its row is deleted.
BEGIN TRANSACTION;
SET VARIABLE export_files = export_new_files('attributes');
CREATE OR REPLACE TEMP TABLE batch AS FROM query(CASE WHEN len(getvariable('export_files')) > 0
  THEN 'FROM read_parquet(getvariable(''export_files''), filename = true, file_row_number = true)'
  ELSE 'SELECT *, NULL::VARCHAR AS filename, NULL::BIGINT AS file_row_number FROM attributes LIMIT 0' END);
MERGE INTO attributes t
USING (SELECT workspace_id, internal_customer_id, attribute_name, attribute_value, "timestamp"
       FROM batch
       QUALIFY row_number() OVER (PARTITION BY internal_customer_id, attribute_name
                                  ORDER BY "timestamp" DESC, filename DESC, file_row_number DESC) = 1) s
ON t.internal_customer_id = s.internal_customer_id AND t.attribute_name = s.attribute_name
WHEN MATCHED AND s."timestamp" >= t."timestamp" AND s.attribute_value IS NULL THEN DELETE
WHEN MATCHED AND s."timestamp" >= t."timestamp" THEN UPDATE SET *
WHEN NOT MATCHED AND s.attribute_value IS NOT NULL THEN INSERT *;
INSERT INTO export_loaded_files SELECT parse_filename(filename), 'attributes', count(*), now() FROM batch GROUP BY filename;
COMMIT;

-- events: the row with the highest seq_num.
BEGIN TRANSACTION;
SET VARIABLE export_files = export_new_files('events');
CREATE OR REPLACE TEMP TABLE batch AS FROM query(CASE WHEN len(getvariable('export_files')) > 0
  THEN 'FROM read_parquet(getvariable(''export_files''), filename = true, file_row_number = true)'
  ELSE 'SELECT *, NULL::VARCHAR AS filename, NULL::BIGINT AS file_row_number FROM events LIMIT 0' END);
MERGE INTO events t
USING (SELECT workspace_id, event_id, internal_customer_id, name, "type", data, "timestamp", seq_num
       FROM batch
       QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY seq_num DESC, filename DESC, file_row_number DESC) = 1) s
ON t.event_id = s.event_id
WHEN MATCHED AND s.seq_num > t.seq_num THEN UPDATE SET *
WHEN NOT MATCHED THEN INSERT *;
INSERT INTO export_loaded_files SELECT parse_filename(filename), 'events', count(*), now() FROM batch GROUP BY filename;
COMMIT;

DROP TABLE batch;

-- What this run loaded.
SELECT table_name, count(*) AS files, sum(row_count) AS file_rows
FROM export_loaded_files WHERE loaded_at >= getvariable('export_run_started')
GROUP BY table_name ORDER BY table_name;
