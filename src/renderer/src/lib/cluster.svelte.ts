/**
 * The open project's Slurm jobs for the Jobs tab: the job directories planned from it (cluster.list, which the
 * project records) and those opened by hand this session (a job planned from a copy of the project). Each job's
 * shard states are read by its card (ClusterJob, cluster.status).
 */
import type { ResultOf } from '../../../shared/contract.js';
import { api } from './api.js';
import { project } from './project.svelte.js';
import { Loader } from './runs.svelte.js';

class ClusterJobs {
  readonly planned = new Loader<ResultOf<'cluster.list'>>();
  /** Job directories opened this session (not recorded in the project). */
  opened = $state<string[]>([]);
  #file: string | null = null;

  /** Re-read the list (a newer project forgets the directories opened for the previous one). */
  async refresh(): Promise<void> {
    const file = project.file;
    if (file !== this.#file) {
      this.#file = file;
      this.opened = [];
      this.planned.clear();
    }
    if (file) await this.planned.load(() => api['cluster.list']({ project: file }), { keep: true });
  }

  open(dir: string): void {
    const d = dir.trim();
    if (d && !this.dirs.includes(d)) this.opened = [...this.opened, d];
  }

  /** Every job directory to show, planned ones first (newest first), then the opened ones. */
  get dirs(): string[] {
    const planned = [...(this.planned.value?.jobs ?? [])].reverse().map((j) => j.dir);
    return [...planned, ...this.opened.filter((d) => !planned.includes(d))];
  }

  /** What the project recorded of a planned job (null for one opened by hand). */
  plannedJob(dir: string): ResultOf<'cluster.list'>['jobs'][number] | null {
    return this.planned.value?.jobs.find((j) => j.dir === dir) ?? null;
  }
}

export const clusterJobs = new ClusterJobs();
