/** Which workbench tab shows (a store, so a panel can send the user on: "Ablate these heads →"). */
export type TabId = 'models' | 'datasets' | 'playground' | 'probes' | 'cliffs' | 'heads' | 'ablations' | 'selection' | 'compare' | 'jobs';

class Nav {
  tab = $state<TabId>('cliffs');
}

export const nav = new Nav();
