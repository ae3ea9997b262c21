/** Demo prompt sets imported into a test project (harmful / harmless / the safety-train pairs), as runDemo does. */
import path from 'node:path';
import { readDatasetFile } from '../../../src/main/engine/datasets/import.js';
import { demoResourcesDir } from '../../../src/main/api/demo/resources.js';
import type { ProjectStore } from '../../../src/main/store/project-store.js';
import type { DatasetRow } from '../../../src/main/store/types.js';

/** Import resources/demo/`file` as `name`, keeping only rows labelled `label` when given. */
export function importDemo(store: ProjectStore, name: string, file: 'prompts.json' | 'safety-train.json', label?: 'harmful' | 'harmless'): DatasetRow {
  const source = path.join(demoResourcesDir(), file);
  const read = readDatasetFile(source);
  const items = (label ? read.items.filter((i) => i.label === label) : read.items).map((item, idx) => ({ ...item, idx }));
  return store.datasets.add(name, { ...read, items }, source);
}
