/**
 * Light / dark theme: follows prefers-color-scheme until the user picks one with the toggle; the pick is kept in
 * localStorage and applied as html[data-theme]. `resolved` is what is showing now (plots restyle from it).
 */
export type ThemeChoice = 'system' | 'light' | 'dark';

const KEY = 'cliffscope.theme';

function stored(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : 'system';
  } catch {
    return 'system';
  }
}

class Theme {
  choice = $state<ThemeChoice>(stored());
  #systemDark = $state(false);

  constructor() {
    const mq = window.matchMedia('(prefers-color-scheme: dark)');
    this.#systemDark = mq.matches;
    mq.addEventListener('change', (e) => (this.#systemDark = e.matches));
    this.#apply();
  }

  get resolved(): 'light' | 'dark' {
    return this.choice === 'system' ? (this.#systemDark ? 'dark' : 'light') : this.choice;
  }

  /** Switch to the other theme than the one showing (a toggle; "system" is restored by `reset`). */
  toggle(): void {
    this.set(this.resolved === 'dark' ? 'light' : 'dark');
  }

  set(choice: ThemeChoice): void {
    this.choice = choice;
    try {
      if (choice === 'system') localStorage.removeItem(KEY);
      else localStorage.setItem(KEY, choice);
    } catch {
      // storage may be disabled; the choice still holds for this page
    }
    this.#apply();
  }

  #apply(): void {
    if (this.choice === 'system') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = this.choice;
  }
}

export const theme = new Theme();
