/**
 * The project file's schema, as an ordered list of migrations keyed on `PRAGMA user_version`.
 *
 * Conventions: every table is STRICT; ids are INTEGER PRIMARY KEY; times are ISO-8601 UTC text with milliseconds
 * (readable in exports and sortable as text); JSON lives in TEXT columns guarded by json_valid; float vectors and
 * maps are little-endian float32 BLOBs, token ids little-endian int32 BLOBs, with a CHECK on their byte length where
 * the shape is known. Rows that belong to a run cascade on its deletion; shared things (models, datasets, probes) are
 * never deleted from under a run that uses them.
 *
 * Never edit a released migration: add a new one.
 */
import type Database from 'better-sqlite3';
import { migrateV2 } from './migrate-v2.js';

/** Stored in the header (`PRAGMA application_id`): "Clif". Lets us tell our files from other SQLite files. */
export const APPLICATION_ID = 0x436c6966;

/** Value of meta.format in every project. */
export const PROJECT_FORMAT = 'cliffscope-project';

export const NOW_SQL = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;

/** Run kinds are the application's (src/shared/runs/registry.ts); the store checks them on insert. */
export { RUN_KINDS } from '../../shared/runs/registry.js';
export { SWEEP_CONTROLS } from '../../shared/runs/ablate.js';
export const RUN_STATUSES = ['pending', 'running', 'done', 'interrupted', 'failed', 'cancelled'] as const;
export const ITEM_STATUSES = ['done', 'failed'] as const;

// A released migration's SQL never changes, so format 1's lists are spelled out here as they were.
export const V1_RUN_KINDS = "'generate', 'probe', 'trace', 'heads', 'ablate', 'judge', 'select'";
const V1_SWEEP_CONTROLS = "'planted', 'top', 'random'";
const list = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(', ');

export interface Migration {
  version: number;
  description: string;
  sql: string;
  /** Data changes SQL cannot say plainly (stored JSON), run after `sql` in the same transaction. */
  data?: (db: Database.Database) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'initial schema',
    sql: `
PRAGMA application_id = ${APPLICATION_ID};

-- Key/value facts about the file itself: format marker, creation time, and (for exported runs) what was exported.
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

-- A checkpoint as used: the same weights compiled with different options are different rows.
CREATE TABLE models (
  id              INTEGER PRIMARY KEY,
  name            TEXT,
  path            TEXT NOT NULL,
  content_hash    TEXT NOT NULL,
  config          TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
  compile_options TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(compile_options)),
  created_at      TEXT NOT NULL DEFAULT (${NOW_SQL}),
  UNIQUE (content_hash, compile_options)
) STRICT;

CREATE TABLE datasets (
  id             INTEGER PRIMARY KEY,
  name           TEXT NOT NULL UNIQUE,
  source_file    TEXT,
  format         TEXT,
  -- sha256 over the stored items: identifies the same data across projects (used to merge imports).
  content_hash   TEXT NOT NULL,
  mapping        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(mapping)),
  columns        TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(columns)),
  item_count     INTEGER NOT NULL DEFAULT 0,
  rejected_count INTEGER NOT NULL DEFAULT 0,
  -- The rejected rows ({line, reason}; the first 1000), so the UI can say which rows were dropped and why.
  rejected       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(rejected)),
  created_at     TEXT NOT NULL DEFAULT (${NOW_SQL})
) STRICT;
CREATE INDEX datasets_content ON datasets (content_hash);

CREATE TABLE dataset_items (
  id          INTEGER PRIMARY KEY,
  dataset_id  INTEGER NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
  idx         INTEGER NOT NULL,
  source_line INTEGER,
  prompt      TEXT NOT NULL,
  response    TEXT,
  label       TEXT,
  category    TEXT,
  extra       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(extra)),
  UNIQUE (dataset_id, idx)
) STRICT;

CREATE TABLE runs (
  id            INTEGER PRIMARY KEY,
  -- Random, global: recognises the same run when run files move between projects.
  uid           TEXT NOT NULL UNIQUE,
  kind          TEXT NOT NULL CHECK (kind IN (${V1_RUN_KINDS})),
  name          TEXT,
  model_id      INTEGER REFERENCES models (id),
  dataset_id    INTEGER REFERENCES datasets (id),
  parent_run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
  config        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),   -- everything that shapes results, seeds included
  versions      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(versions)), -- engine, provider, library versions
  status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN (${list(RUN_STATUSES)})),
  error         TEXT,
  -- Who is running it: a run left 'running' by a process that no longer exists is marked 'interrupted' on open.
  owner_host    TEXT,
  owner_pid     INTEGER,
  owner_token   TEXT,
  created_at    TEXT NOT NULL DEFAULT (${NOW_SQL}),
  started_at    TEXT,
  finished_at   TEXT
) STRICT;
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_parent ON runs (parent_run_id);

-- The unit of resumability: an item is committed, with all the rows it produced, in one transaction.
CREATE TABLE run_items (
  id         INTEGER PRIMARY KEY,
  run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  key        TEXT NOT NULL,
  status     TEXT NOT NULL CHECK (status IN (${list(ITEM_STATUSES)})),
  payload    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
  error      TEXT,
  created_at TEXT NOT NULL DEFAULT (${NOW_SQL}),
  UNIQUE (run_id, key)
) STRICT;

CREATE TABLE probes (
  id            INTEGER PRIMARY KEY,
  uid           TEXT NOT NULL UNIQUE,
  model_id      INTEGER NOT NULL REFERENCES models (id),
  run_id        INTEGER REFERENCES runs (id) ON DELETE SET NULL, -- the run that trained it, if any
  name          TEXT NOT NULL,
  version       INTEGER NOT NULL,
  layer         INTEGER NOT NULL,
  position_rule TEXT NOT NULL,
  dim           INTEGER NOT NULL,
  weights       BLOB NOT NULL CHECK (length(weights) = 4 * dim),
  bias          REAL NOT NULL,
  metrics       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)),
  provenance    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(provenance)),
  created_at    TEXT NOT NULL DEFAULT (${NOW_SQL}),
  UNIQUE (model_id, name, version)
) STRICT;

-- A prompt + generation (or a supplied transcript, teacher-forced). Token spans are half-open indices into token_ids.
CREATE TABLE transcripts (
  id              INTEGER PRIMARY KEY,
  uid             TEXT NOT NULL UNIQUE,
  run_id          INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  item_id         INTEGER REFERENCES dataset_items (id),
  prompt          TEXT NOT NULL,
  token_ids       BLOB NOT NULL CHECK (length(token_ids) % 4 = 0),
  prompt_tokens   INTEGER NOT NULL,
  text            TEXT NOT NULL,
  thinking_start  INTEGER,
  thinking_end    INTEGER,
  answer_boundary INTEGER, -- t_b
  finish_reason   TEXT,
  head_scale_key  TEXT,    -- the ablation setting it was generated under (see sweep_cells); NULL = none
  created_at      TEXT NOT NULL DEFAULT (${NOW_SQL})
) STRICT;
CREATE INDEX transcripts_run ON transcripts (run_id, head_scale_key);
CREATE INDEX transcripts_item ON transcripts (item_id);

-- Refusal score per token of one transcript under one probe.
CREATE TABLE traces (
  id                INTEGER PRIMARY KEY,
  run_id            INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  transcript_id     INTEGER NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
  probe_id          INTEGER NOT NULL REFERENCES probes (id),
  layer             INTEGER NOT NULL,
  scores            BLOB NOT NULL CHECK (length(scores) % 4 = 0),
  plateau           REAL,    -- I: max score over the thinking span
  final             REAL,    -- I': score at t_b
  ms                REAL,    -- misalignment score MS = I - I'
  steepest_drop_pos INTEGER,
  cliff_width       INTEGER,
  created_at        TEXT NOT NULL DEFAULT (${NOW_SQL})
) STRICT;
CREATE INDEX traces_run ON traces (run_id);
CREATE INDEX traces_transcript ON traces (transcript_id, probe_id);

-- Head attribution: a [layers, heads] float32 map (row-major), for one transcript or averaged over a run's set
-- (transcript_id NULL); optionally the per-token maps [layers, heads, tokens].
CREATE TABLE head_maps (
  id            INTEGER PRIMARY KEY,
  run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  transcript_id INTEGER REFERENCES transcripts (id) ON DELETE CASCADE,
  probe_id      INTEGER REFERENCES probes (id),
  position_rule TEXT NOT NULL,
  layers        INTEGER NOT NULL,
  heads         INTEGER NOT NULL,
  scores        BLOB NOT NULL CHECK (length(scores) = 4 * layers * heads),
  tokens        INTEGER,
  per_token     BLOB CHECK (per_token IS NULL OR length(per_token) = 4 * layers * heads * tokens),
  created_at    TEXT NOT NULL DEFAULT (${NOW_SQL})
) STRICT;
CREATE INDEX head_maps_run ON head_maps (run_id, transcript_id);

-- One setting of an ablation sweep; its transcripts carry the same head_scale_key.
CREATE TABLE sweep_cells (
  id             INTEGER PRIMARY KEY,
  run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  head_scale_key TEXT NOT NULL,
  control        TEXT NOT NULL CHECK (control IN (${V1_SWEEP_CONTROLS})),
  k              INTEGER NOT NULL, -- heads ablated
  fraction       REAL,             -- k / (layers * heads)
  gamma          REAL NOT NULL,
  seed           INTEGER,          -- for the random control
  heads          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(heads)),   -- [[layer, head], ...]
  metrics        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)), -- ASR, mean I', answer length, utility
  created_at     TEXT NOT NULL DEFAULT (${NOW_SQL}),
  UNIQUE (run_id, head_scale_key)
) STRICT;

CREATE TABLE verdicts (
  id            INTEGER PRIMARY KEY,
  run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  transcript_id INTEGER NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
  judge         TEXT NOT NULL,  -- e.g. 'keyword:gcg', 'probe:<uid>', 'guard:<model hash>'
  verdict       TEXT NOT NULL,  -- the judge's own word: 'refused', 'complied', 'safe', 'unsafe', ...
  harmful       INTEGER CHECK (harmful IN (0, 1)), -- what ASR counts; NULL = undecided
  score         REAL,
  detail        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(detail)),
  created_at    TEXT NOT NULL DEFAULT (${NOW_SQL}),
  UNIQUE (run_id, transcript_id, judge)
) STRICT;
CREATE INDEX verdicts_transcript ON verdicts (transcript_id);

-- Cliff-as-a-Judge: a score per training item, then a rank and the chosen subset.
CREATE TABLE selections (
  id            INTEGER PRIMARY KEY,
  run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  item_id       INTEGER NOT NULL REFERENCES dataset_items (id),
  transcript_id INTEGER REFERENCES transcripts (id) ON DELETE SET NULL,
  score         REAL,
  rank          INTEGER,
  selected      INTEGER NOT NULL DEFAULT 0 CHECK (selected IN (0, 1)),
  created_at    TEXT NOT NULL DEFAULT (${NOW_SQL}),
  UNIQUE (run_id, item_id)
) STRICT;
CREATE INDEX selections_rank ON selections (run_id, rank);
`,
  },
  {
    version: 2,
    description:
      'names that explain themselves: the run kind "generate" is "transcripts" (kinds are checked by the application, so a new kind needs no migration); what a probe reads is a residual-stack index (resid_index), not a layer; stored configs take the API\'s shapes',
    sql: `
ALTER TABLE probes RENAME COLUMN layer TO resid_index;
ALTER TABLE traces RENAME COLUMN layer TO resid_index;
`,
    // The runs table's CHECK on kind goes, and "generate" runs become "transcripts": see migrate-v2.ts.
    data: migrateV2,
  },
  {
    version: 3,
    description: 'runs carry tags (a JSON list of short strings, e.g. ["baseline", "7b"]) for filtering and grouping them; names and tags can be changed after a run',
    sql: `
ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array');
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
