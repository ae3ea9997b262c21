// @vitest-environment jsdom
import { fireEvent, render, screen } from '@testing-library/svelte';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import DialogHarness from './DialogHarness.svelte';

/**
 * jsdom has <dialog> but not its methods. This stands in for the browser: showModal()/close() toggle `open`, close()
 * fires `close`, and Escape on an open modal fires a cancelable `cancel` and then closes it, as browsers do.
 */
const proto = HTMLDialogElement.prototype as HTMLDialogElement & Record<string, unknown>;
const saved = { showModal: proto.showModal, close: proto.close };
const showModal = vi.fn(function (this: HTMLDialogElement) {
  this.setAttribute('open', '');
});
const close = vi.fn(function (this: HTMLDialogElement) {
  if (!this.hasAttribute('open')) return;
  this.removeAttribute('open');
  this.dispatchEvent(new Event('close'));
});
function escape(event: KeyboardEvent): void {
  if (event.key !== 'Escape') return;
  const dialog = (event.target as Element).closest('dialog');
  if (!dialog?.open) return;
  if (dialog.dispatchEvent(new Event('cancel', { cancelable: true }))) dialog.close();
}

beforeAll(() => {
  proto.showModal = showModal;
  proto.close = close;
  document.addEventListener('keydown', escape);
});
afterAll(() => {
  proto.showModal = saved.showModal;
  proto.close = saved.close;
  document.removeEventListener('keydown', escape);
});

async function openDialog(): Promise<HTMLDialogElement> {
  render(DialogHarness, { props: { title: 'Settings' } });
  const dialog = document.querySelector('dialog')!;
  expect(dialog.open).toBe(false);
  showModal.mockClear();
  close.mockClear();
  await fireEvent.click(screen.getByRole('button', { name: 'Open settings' }));
  return dialog;
}

describe('Dialog', () => {
  it('is closed and renders no body until opened', () => {
    render(DialogHarness, { props: { title: 'Settings' } });
    expect(document.querySelector('dialog')!.open).toBe(false);
    expect(screen.queryByLabelText('Name')).toBeNull();
    expect(screen.getByTestId('bound').textContent).toBe('closed');
  });

  it('opens as a modal, named by its title, with its content', async () => {
    const dialog = await openDialog();
    expect(showModal).toHaveBeenCalledTimes(1);
    expect(dialog.open).toBe(true);
    expect(screen.getByRole('dialog', { name: 'Settings' })).toBe(dialog);
    expect(screen.getByRole('heading', { name: 'Settings' })).toBeTruthy();
    expect(screen.getByLabelText('Name')).toBeTruthy();
  });

  it('Escape closes it and tells the parent (bind:open)', async () => {
    const dialog = await openDialog();
    await fireEvent.keyDown(screen.getByLabelText('Name'), { key: 'Escape' });
    expect(dialog.open).toBe(false);
    expect(screen.getByTestId('bound').textContent).toBe('closed');
    expect(screen.queryByLabelText('Name')).toBeNull();
  });

  it('the close button closes it', async () => {
    const dialog = await openDialog();
    await fireEvent.click(screen.getByRole('button', { name: 'Close' }));
    expect(close).toHaveBeenCalledTimes(1);
    expect(dialog.open).toBe(false);
    expect(screen.getByTestId('bound').textContent).toBe('closed');
    expect(screen.queryByLabelText('Name')).toBeNull();
  });

  it('can be opened again after closing', async () => {
    const dialog = await openDialog();
    await fireEvent.keyDown(dialog, { key: 'Escape' });
    expect(dialog.open).toBe(false);
    await fireEvent.click(screen.getByRole('button', { name: 'Open settings', hidden: true }));
    expect(showModal).toHaveBeenCalledTimes(2);
    expect(dialog.open).toBe(true);
    expect(screen.getByTestId('bound').textContent).toBe('open');
  });
});
