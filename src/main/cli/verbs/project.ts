/**
 * Project verbs: `project` (create, describe, export, import), `dataset` (import with a column mapping, list, the
 * rejected rows) and `report` (a run's summary, or the list of runs). None of them loads a model; each answers
 * through the application layer, as the app and `serve` do.
 */
import fs from 'node:fs';
import { withReader } from '../../api/projects.js';
import { formatRunReport } from '../../api/runs.js';
import { DEFAULT_MAX_DATASET_BYTES } from '../../engine/datasets/import.js';
import { CliffscopeError } from '../../engine/errors.js';
import { checkProject } from '../../store/open.js';
import { toCsv } from '../../store/tabular.js';
import { call } from '../api.js';
import { type Command, idFlag, numberFlag, parseVerbArgs, printHelp } from '../command.js';

function printJsonOr(json: boolean | undefined, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

export const projectCommand: Command = {
  name: 'project',
  summary: 'create a project file, describe it, export it (or one run), import a run',
  help: `Usage: cliffscope project new FILE
       cliffscope project info FILE [--check] [--json]
       cliffscope project export FILE DEST [--run RUN]
       cliffscope project import FILE SRC

A project is one SQLite file holding models, datasets, runs and every result. \`export\` writes a portable copy
(the whole project, or one run with what it references) for a colleague; \`import\` merges a run exported that way.

A project that is damaged is refused for writing (opening for writing quick-checks it); \`info --check\` runs the full
check and says what is wrong. A read-only project (file or folder) opens read-only: every read works.

Options:
  --run RUN     export only this run
  --check       (info) SQLite's full integrity check of the file
  --json        machine-readable output
  -h, --help    this help
`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, { run: { type: 'string' }, check: { type: 'boolean' }, json: { type: 'boolean' } });
    if (values.help) return printHelp(this);
    const [action, file, other] = positionals;
    if (action === 'info' && values.check && file) {
      const problems = checkProject(file);
      const ok = problems.length === 1 && problems[0] === 'ok';
      printJsonOr(values.json, { file, ok, problems: ok ? [] : problems }, ok ? `${file}: integrity check ok` : `${file} is damaged:\n${problems.map((p) => `  ${p}`).join('\n')}`);
      return ok ? 0 : 1;
    }
    if (!action || !file) throw new CliffscopeError('bad-argument', 'usage: cliffscope project new|info|export|import FILE …', { hint: 'see: cliffscope project --help' });
    if (action === 'new') {
      if (fs.existsSync(file)) throw new CliffscopeError('bad-argument', `${file} already exists`);
      await call('project.open', { file, create: true });
      process.stdout.write(`created ${file}\n`);
    } else if (action === 'info') {
      const info = await call('project.open', { file });
      printJsonOr(values.json, info, [
        `project ${info.file}`,
        `models:   ${info.models.map((m) => `#${m.id} ${m.path}`).join('; ') || '—'}`,
        `datasets: ${info.datasets.map((d) => `#${d.id} ${d.name} (${d.itemCount} items${d.rejectedCount ? `, ${d.rejectedCount} rejected` : ''})`).join('; ') || '—'}`,
        `probes:   ${info.probes.map((p) => `#${p.id} ${p.name} v${p.version} (resid ${p.residIndex})`).join('; ') || '—'}`,
        `runs:     ${info.runs.map((r) => `#${r.id} ${r.kind}${r.name ? ` "${r.name}"` : ''} ${r.status}`).join('; ') || '—'}`,
      ].join('\n'));
    } else if (action === 'export') {
      if (!other) throw new CliffscopeError('bad-argument', 'project export needs a destination file');
      const runId = values.run === undefined ? undefined : idFlag(values.run, 'run', 'RUN');
      await call('project.export', { file, dest: other, ...(runId !== undefined ? { runId } : {}) }, { flags: new Map([['runId', '--run']]) });
      process.stdout.write(`wrote ${other}\n`);
    } else if (action === 'import') {
      if (!other) throw new CliffscopeError('bad-argument', 'project import needs the exported file to read');
      const summary = await call('project.import', { file, src: other });
      printJsonOr(values.json, summary, `imported from ${other}: ${JSON.stringify(summary)}`);
    } else {
      throw new CliffscopeError('bad-argument', `unknown project action "${action}" (new, info, export, import)`);
    }
    return 0;
  },
};

const DATASET_FIELDS = ['prompt', 'response', 'label', 'category', 'safe_response'] as const;

export const datasetCommand: Command = {
  name: 'dataset',
  summary: 'import a CSV / JSON / JSONL prompt set into a project, or list datasets',
  help: `Usage: cliffscope dataset import PROJECT FILE --name NAME [--map prompt=COL,response=COL,label=COL,category=COL,safe_response=COL] [--label L] [--format F] [--max-mb N] [--json]
       cliffscope dataset list PROJECT [--json]
       cliffscope dataset rejected PROJECT NAME

Reads CSV (RFC 4180: quoted fields and newlines, CRLF, UTF-8 BOM), a JSON array (or an object holding one) or
JSONL. Columns are detected (goal, prompt, instruction, question, forbidden_prompt …; response, output, target …;
label; category) unless --map names them. Bad rows are listed with their line numbers instead of failing the import.
The project is created when it does not exist yet. Only regular files are read (links are followed), as strict UTF-8
(a bad byte is reported with its line).

Options:
  --name NAME   the dataset's name in the project (required for import)
  --map LIST    explicit column mapping, e.g. prompt=goal,response=target
  --label L     give every item of the file the label L (e.g. harmful) instead of reading a label column
  --format F    csv, tsv, json or jsonl (default: from the file's extension)
  --max-mb N    refuse files larger than N MB (default ${DEFAULT_MAX_DATASET_BYTES / 1024 / 1024})
  --json        machine-readable output
  -h, --help    this help
`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, { name: { type: 'string' }, map: { type: 'string' }, label: { type: 'string' }, format: { type: 'string' }, 'max-mb': { type: 'string' }, json: { type: 'boolean' } });
    if (values.help) return printHelp(this);
    const [action, project, file] = positionals;
    if (!action || !project) throw new CliffscopeError('bad-argument', 'usage: cliffscope dataset import|list|rejected PROJECT …', { hint: 'see: cliffscope dataset --help' });
    if (action === 'import') {
      if (!file || !values.name) throw new CliffscopeError('bad-argument', 'dataset import needs FILE and --name NAME');
      const mapping: Partial<Record<(typeof DATASET_FIELDS)[number], string>> = {};
      for (const pair of (values.map ?? '').split(',').filter(Boolean)) {
        const [k, v] = pair.split('=');
        const field = DATASET_FIELDS.find((f) => f === k);
        if (!field || !v) throw new CliffscopeError('bad-argument', `--map entry "${pair}" must be FIELD=COLUMN with FIELD one of ${DATASET_FIELDS.join(', ')}`);
        mapping[field] = v;
      }
      await call('project.open', { file: project, create: true });
      const flags = new Map([
        ['file', 'FILE'],
        ['name', '--name'],
        ['mapping', '--map'],
        ['format', '--format'],
        ['label', '--label'],
        ['maxMb', '--max-mb'],
      ]);
      const maxMb = numberFlag(values['max-mb'], 'max-mb');
      const params = {
        project,
        file,
        name: values.name,
        mapping,
        ...(values.format !== undefined ? { format: values.format } : {}),
        ...(values.label !== undefined ? { label: values.label } : {}),
        ...(maxMb !== undefined ? { maxMb } : {}),
      };
      const { dataset, rejected } = await call('dataset.import', params, { flags });
      printJsonOr(values.json, { dataset, rejected }, [
        `imported ${dataset.itemCount} items into "${dataset.name}" (#${dataset.id}) from ${file}`,
        `  columns: ${dataset.columns.join(', ')}; mapping: ${JSON.stringify(dataset.mapping)}`,
        ...(dataset.rejectedCount
          ? [
              `  ${dataset.rejectedCount} row(s) rejected:`,
              ...rejected.slice(0, 20).map((r) => `    line ${r.line}: ${r.reason}`),
              ...(dataset.rejectedCount > 20 ? [`    … (cliffscope dataset rejected ${project} ${values.name})`] : []),
            ]
          : []),
      ].join('\n'));
    } else if (action === 'list') {
      const rows = (await call('project.open', { file: project })).datasets.map((d) => ({ id: d.id, name: d.name, items: d.itemCount, rejected: d.rejectedCount, source: d.sourceFile }));
      printJsonOr(values.json, rows, rows.map((d) => `#${d.id} ${d.name}: ${d.items} items${d.rejected ? `, ${d.rejected} rejected` : ''} (${d.source ?? '—'})`).join('\n') || 'no datasets');
    } else if (action === 'rejected') {
      const rejected = withReader(project, (s) => {
        const d = file ? s.datasets.find(file) : null;
        if (!d) throw new CliffscopeError('bad-argument', `no dataset "${file}" in ${project}`);
        return d.rejected;
      });
      process.stdout.write(toCsv(rejected.map((r) => ({ line: r.line, reason: r.reason }))));
    } else {
      throw new CliffscopeError('bad-argument', `unknown dataset action "${action}" (import, list, rejected)`);
    }
    return 0;
  },
};

export const reportCommand: Command = {
  name: 'report',
  summary: "print a run's summary (or list a project's runs)",
  help: `Usage: cliffscope report PROJECT [RUN] [--json]

With RUN, the run's kind, model, status, timings and headline numbers (probe metrics per layer, mean plateau /
final / MS, ranked heads, the ablation table, the selection). Without RUN, every run in the project.

Options:
  --json        machine-readable output
  -h, --help    this help
`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, { json: { type: 'boolean' } });
    if (values.help) return printHelp(this);
    const [project, runRef] = positionals;
    if (!project) throw new CliffscopeError('bad-argument', 'report needs the project file', { hint: 'see: cliffscope report --help' });
    if (runRef === undefined) {
      const runs = (await call('project.open', { file: project })).runs.map((r) => ({ id: r.id, kind: r.kind, name: r.name, tags: r.tags, status: r.status, created: r.createdAt }));
      printJsonOr(values.json, runs, runs.map((r) => `#${r.id} ${r.kind.padEnd(8)} ${r.status.padEnd(11)} ${r.name ?? ''}${r.tags.length ? ` [${r.tags.join(', ')}]` : ''}`).join('\n') || 'no runs');
    } else {
      const runId = Number(runRef);
      if (!Number.isInteger(runId) || runId < 1) throw new CliffscopeError('bad-argument', `RUN must be a run id, got "${runRef}"`);
      const { report } = await call('run.report', { project, runId });
      printJsonOr(values.json, report, formatRunReport(report));
    }
    return 0;
  },
};
