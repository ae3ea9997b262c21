/**
 * Project verbs: `project` (create, describe, export, import), `dataset` (import with a column mapping, list) and
 * `report` (a run's summary, or the list of runs). None of them loads a model.
 */
import fs from 'node:fs';
import { DEFAULT_MAX_DATASET_BYTES } from '../../engine/datasets/import.js';
import { CliffscopeError } from '../../engine/errors.js';
import { formatRunReport, runReport } from '../../engine/pipelines/report.js';
import { checkProject, openProject } from '../../engine/store/open.js';
import { toCsv } from '../../engine/store/tabular.js';
import { type Command, intOption, parseVerbArgs, printHelp } from '../command.js';

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
      openProject(file, { create: true }).close();
      process.stdout.write(`created ${file}\n`);
      return 0;
    }
    const store = openProject(file, { create: false });
    try {
      if (action === 'info') {
        const info = {
          file: store.file,
          models: store.listModels().map((m) => ({ id: m.id, path: m.path, hash: m.contentHash })),
          datasets: store.listDatasets().map((d) => ({ id: d.id, name: d.name, items: d.itemCount, rejected: d.rejectedCount })),
          runs: store.listRuns().map((r) => ({ id: r.id, kind: r.kind, name: r.name, status: r.status })),
          probes: store.listProbes().map((p) => ({ id: p.id, name: p.name, version: p.version, layer: p.layer })),
        };
        printJsonOr(values.json, info, [
          `project ${info.file}`,
          `models:   ${info.models.map((m) => `#${m.id} ${m.path}`).join('; ') || '—'}`,
          `datasets: ${info.datasets.map((d) => `#${d.id} ${d.name} (${d.items} items${d.rejected ? `, ${d.rejected} rejected` : ''})`).join('; ') || '—'}`,
          `probes:   ${info.probes.map((p) => `#${p.id} ${p.name} v${p.version} (layer ${p.layer})`).join('; ') || '—'}`,
          `runs:     ${info.runs.map((r) => `#${r.id} ${r.kind}${r.name ? ` "${r.name}"` : ''} ${r.status}`).join('; ') || '—'}`,
        ].join('\n'));
      } else if (action === 'export') {
        if (!other) throw new CliffscopeError('bad-argument', 'project export needs a destination file');
        const run = intOption(values.run, 'run');
        if (run !== undefined) store.exportRun(run, other);
        else store.exportProject(other);
        process.stdout.write(`wrote ${other}\n`);
      } else if (action === 'import') {
        if (!other) throw new CliffscopeError('bad-argument', 'project import needs the exported file to read');
        const summary = store.importRun(other);
        printJsonOr(values.json, summary, `imported from ${other}: ${JSON.stringify(summary)}`);
      } else {
        throw new CliffscopeError('bad-argument', `unknown project action "${action}" (new, info, export, import)`);
      }
    } finally {
      store.close();
    }
    return 0;
  },
};

export const datasetCommand: Command = {
  name: 'dataset',
  summary: 'import a CSV / JSON / JSONL prompt set into a project, or list datasets',
  help: `Usage: cliffscope dataset import PROJECT FILE --name NAME [--map prompt=COL,response=COL,label=COL,category=COL] [--max-mb N] [--json]
       cliffscope dataset list PROJECT [--json]
       cliffscope dataset rejected PROJECT NAME

Reads CSV (RFC 4180: quoted fields and newlines, CRLF, UTF-8 BOM), a JSON array (or an object holding one) or
JSONL. Columns are detected (goal, prompt, instruction, question, forbidden_prompt …; response, output, target …;
label; category) unless --map names them. Bad rows are listed with their line numbers instead of failing the import.
Only regular files are read (links are followed), as strict UTF-8 (a bad byte is reported with its line).

Options:
  --name NAME   the dataset's name in the project (required for import)
  --map LIST    explicit column mapping, e.g. prompt=goal,response=target
  --max-mb N    refuse files larger than N MB (default ${DEFAULT_MAX_DATASET_BYTES / 1024 / 1024})
  --json        machine-readable output
  -h, --help    this help
`,
  async run(argv) {
    const { values, positionals } = parseVerbArgs(this, argv, { name: { type: 'string' }, map: { type: 'string' }, 'max-mb': { type: 'string' }, json: { type: 'boolean' } });
    if (values.help) return printHelp(this);
    const [action, projectFile, file] = positionals;
    if (!action || !projectFile) throw new CliffscopeError('bad-argument', 'usage: cliffscope dataset import|list|rejected PROJECT …', { hint: 'see: cliffscope dataset --help' });
    const store = openProject(projectFile, { create: action === 'import' });
    try {
      if (action === 'import') {
        if (!file || !values.name) throw new CliffscopeError('bad-argument', 'dataset import needs FILE and --name NAME');
        const mapping: Record<string, string> = {};
        for (const pair of (values.map ?? '').split(',').filter(Boolean)) {
          const [k, v] = pair.split('=');
          if (!k || !v || !['prompt', 'response', 'label', 'category'].includes(k)) {
            throw new CliffscopeError('bad-argument', `--map entry "${pair}" must be FIELD=COLUMN with FIELD one of prompt, response, label, category`);
          }
          mapping[k] = v;
        }
        const maxMb = intOption(values['max-mb'], 'max-mb', 1);
        const { dataset, rejected } = store.importDataset(values.name, file, mapping, maxMb === undefined ? {} : { maxBytes: maxMb * 1024 * 1024 });
        printJsonOr(values.json, { dataset, rejected }, [
          `imported ${dataset.itemCount} items into "${dataset.name}" (#${dataset.id}) from ${file}`,
          `  columns: ${dataset.columns.join(', ')}; mapping: ${JSON.stringify(dataset.mapping)}`,
          ...(rejected.length ? [`  ${rejected.length} row(s) rejected:`, ...rejected.slice(0, 20).map((r) => `    line ${r.line}: ${r.reason}`), ...(rejected.length > 20 ? [`    … (cliffscope dataset rejected ${projectFile} ${values.name})`] : [])] : []),
        ].join('\n'));
      } else if (action === 'list') {
        const rows = store.listDatasets().map((d) => ({ id: d.id, name: d.name, items: d.itemCount, rejected: d.rejectedCount, source: d.sourceFile }));
        printJsonOr(values.json, rows, rows.map((d) => `#${d.id} ${d.name}: ${d.items} items${d.rejected ? `, ${d.rejected} rejected` : ''} (${d.source ?? '—'})`).join('\n') || 'no datasets');
      } else if (action === 'rejected') {
        const d = file ? store.findDataset(file) : null;
        if (!d) throw new CliffscopeError('bad-argument', `no dataset "${file}" in ${projectFile}`);
        process.stdout.write(toCsv(d.rejected.map((r) => ({ line: r.line, reason: r.reason }))));
      } else {
        throw new CliffscopeError('bad-argument', `unknown dataset action "${action}" (import, list, rejected)`);
      }
    } finally {
      store.close();
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
    const [projectFile, runRef] = positionals;
    if (!projectFile) throw new CliffscopeError('bad-argument', 'report needs the project file', { hint: 'see: cliffscope report --help' });
    const store = openProject(projectFile, { create: false, readonly: true });
    try {
      if (runRef === undefined) {
        const runs = store.listRuns().map((r) => ({ id: r.id, kind: r.kind, name: r.name, status: r.status, created: r.createdAt }));
        printJsonOr(values.json, runs, runs.map((r) => `#${r.id} ${r.kind.padEnd(8)} ${r.status.padEnd(11)} ${r.name ?? ''}`).join('\n') || 'no runs');
      } else {
        const report = runReport(store, requirePositiveInt(runRef));
        printJsonOr(values.json, report, formatRunReport(report));
      }
    } finally {
      store.close();
    }
    return 0;
  },
};

function requirePositiveInt(s: string): number {
  const n = intOption(s, 'RUN');
  if (n === undefined) throw new CliffscopeError('bad-argument', 'RUN must be a run id');
  return n;
}
