/**
 * Child process for the pipeline kill test: opens an existing project and runs `runGenerate` (config as JSON in
 * argv) with the demo model, printing "run ID" once the run exists and "committed N" after each committed
 * transcript, so the test can SIGKILL it mid-run. If it gets to the end first it prints "finished ID" (the test
 * then fails: the kill came too late to prove anything).
 *
 * usage: node --import tsx generate-child.ts PROJECT MODEL_DIR CACHE_ROOT CONFIG_JSON
 */
import { runGenerate, type GenerateRunConfig } from '../../../src/main/pipelines/transcripts.js';
import { loadModel } from '../../../src/main/engine/runtime/model.js';
import { openProject } from '../../../src/main/store/open.js';

const [file, modelDir, cacheRoot, configJson] = process.argv.slice(2);
if (!file || !modelDir || !cacheRoot || !configJson) throw new Error('usage: generate-child.ts PROJECT MODEL_DIR CACHE_ROOT CONFIG_JSON');
const config = JSON.parse(configJson) as GenerateRunConfig;

const model = await loadModel(modelDir, { cacheRoot, threads: 1 });
const store = openProject(file);
let announced = false;
const id = await runGenerate({
  store,
  model,
  onProgress: (done) => {
    if (!announced) {
      // The first call comes right after the run was started (0 done): the newest generate run is ours.
      announced = true;
      process.stdout.write(`run ${store.runs.list({ kind: 'transcripts' }).at(-1)!.id}\n`);
      return;
    }
    process.stdout.write(`committed ${done}\n`);
  },
}, config);
process.stdout.write(`finished ${id}\n`);
store.close();
await model.session.release();
