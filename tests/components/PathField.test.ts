// @vitest-environment jsdom
/**
 * PathField in the browser (serve mode, no native dialogs): "Browse…" opens the server's file chooser (files.list),
 * which starts in the open project's folder, opens folders, goes up, shows the files the field takes, and fills the
 * field with the file chosen — all by keyboard too.
 */
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import './dom-stubs.js';

const listings: Record<string, unknown> = {
  '/home/u/study': {
    dir: '/home/u/study',
    parent: '/home/u',
    home: '/home/u',
    truncated: false,
    entries: [
      { name: 'data', path: '/home/u/study/data', kind: 'folder', looksLike: 'other', size: null, modified: null },
      { name: 'study.cliffscope', path: '/home/u/study/study.cliffscope', kind: 'file', looksLike: 'project', size: 4096, modified: null },
      { name: 'notes.txt', path: '/home/u/study/notes.txt', kind: 'file', looksLike: 'other', size: 10, modified: null },
    ],
  },
  '/home/u/study/data': {
    dir: '/home/u/study/data',
    parent: '/home/u/study',
    home: '/home/u',
    truncated: false,
    entries: [{ name: 'advbench.csv', path: '/home/u/study/data/advbench.csv', kind: 'file', looksLike: 'dataset', size: 2048, modified: null }],
  },
};
const filesList = vi.fn(async ({ dir }: { dir: string }) => {
  if (!(dir in listings)) throw Object.assign(new Error(`${dir} is outside the folders this server may use`), { code: 'forbidden' });
  return listings[dir];
});

vi.mock('../../src/renderer/src/lib/api.js', async () => ({ ...(await import('./api-mock.js')), api: { 'files.list': filesList }, pickPath: undefined }));

const { default: PathField } = await import('../../src/renderer/src/components/PathField.svelte');
const { project } = await import('../../src/renderer/src/lib/project.svelte.js');

describe('PathField in the browser', () => {
  it('chooses a dataset file through the server’s file chooser, starting in the project’s folder', async () => {
    project.file = '/home/u/study/study.cliffscope';
    render(PathField, { props: { id: 'f', label: 'Dataset file', kind: 'dataset-file', value: '' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Browse…', description: 'Dataset file' }));
    const dialog = await screen.findByRole('dialog', { name: 'Choose a dataset file' });
    const list = await within(dialog).findByRole('list', { name: 'Contents of /home/u/study' });
    expect(filesList).toHaveBeenLastCalledWith({ dir: '/home/u/study' });
    // Folders, and only the files this field takes (a project file is not a dataset).
    expect(within(list).getAllByRole('button').map((b) => b.querySelector('.name')?.textContent)).toEqual(['data/']);
    await fireEvent.click(within(dialog).getByLabelText('show every file'));
    expect(within(list).getAllByRole('button')).toHaveLength(3);
    await fireEvent.click(within(list).getByRole('button', { name: /data\// }));
    const inner = await within(dialog).findByRole('list', { name: 'Contents of /home/u/study/data' });
    // Keyboard: the first entry has focus after a folder opens; Enter on it chooses the file.
    await waitFor(() => expect(document.activeElement?.textContent).toContain('advbench.csv'));
    await fireEvent.click(within(inner).getByRole('button', { name: /advbench\.csv/ }));
    expect((screen.getByLabelText('Dataset file') as HTMLInputElement).value).toBe('/home/u/study/data/advbench.csv');
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('picks a folder with "Use this folder", and shows why a folder cannot be listed', async () => {
    project.file = '/home/u/study/study.cliffscope';
    render(PathField, { props: { id: 'o', label: 'Output folder', kind: 'folder', value: '' } });
    await fireEvent.click(screen.getByRole('button', { name: 'Browse…', description: 'Output folder' }));
    const dialog = await screen.findByRole('dialog', { name: 'Choose a folder' });
    await within(dialog).findByRole('list', { name: 'Contents of /home/u/study' });
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Up one folder' }));
    expect(await within(dialog).findByRole('alert')).toHaveProperty('textContent', expect.stringContaining('outside the folders this server may use'));
    // The last listing stays; use it.
    await fireEvent.click(within(dialog).getByRole('button', { name: 'Use this folder' }));
    expect((screen.getByLabelText('Output folder') as HTMLInputElement).value).toBe('/home/u/study');
  });
});
