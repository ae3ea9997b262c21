/**
 * The application menu's actions (Electron only: File → Open Project…, New Project…, Open Demo Project, Open Recent,
 * View → Toggle Dark Theme), carried out with the same project and theme stores the sidebar uses.
 */
import type { MenuAction } from '../../../shared/bridge.js';
import { onMenu } from './api.js';
import { project } from './project.svelte.js';
import { theme } from './theme.svelte.js';

export function handleMenuAction(action: MenuAction): void {
  switch (action.action) {
    case 'open-project':
      void project.open(action.file);
      break;
    case 'new-project':
      void project.open(action.file, { create: true });
      break;
    case 'open-demo':
      void project.openDemo();
      break;
    case 'toggle-theme':
      theme.toggle();
      break;
  }
}

/** Start handling menu actions; returns a function that stops. A no-op in serve mode. */
export function listenToMenu(): () => void {
  return onMenu ? onMenu(handleMenuAction) : () => {};
}
