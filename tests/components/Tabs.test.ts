// @vitest-environment jsdom
import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import TabsHarness from './TabsHarness.svelte';

/** Tabs.svelte inside a parent that binds `selected` and renders the selected id in the panel (TabsHarness.svelte). */
function setup(selected = 'cliff') {
  render(TabsHarness, { props: { selected, label: 'Analyses' } });
  return screen.getByRole('tablist', { name: 'Analyses' });
}

/** The selected tab's name, checked against the roving tabindex, the focus and the rendered panel. */
function selectedTab(): string {
  const selected = screen.getAllByRole('tab').filter((t) => t.getAttribute('aria-selected') === 'true');
  expect(selected).toHaveLength(1);
  const tab = selected[0]!;
  const id = tab.id.replace(/^tab-/, '');
  for (const t of screen.getAllByRole('tab')) expect(t.tabIndex).toBe(t === tab ? 0 : -1);
  const tabpanel = screen.getByRole('tabpanel');
  expect(tabpanel.id).toBe(`panel-${id}`);
  expect(tabpanel.getAttribute('aria-labelledby')).toBe(tab.id);
  expect(tab.getAttribute('aria-controls')).toBe(tabpanel.id);
  expect(tabpanel.textContent).toBe(`panel of ${id}`);
  expect(screen.getByTestId('bound').textContent).toBe(id); // bind:selected reaches the parent
  return tab.textContent!.replace(/\d+/g, '').trim();
}

describe('Tabs', () => {
  it('renders one tab per entry, the selected one marked, badges shown, and only its panel', () => {
    setup();
    const tabs = screen.getAllByRole('tab');
    expect(tabs.map((t) => t.textContent?.replace(/\s+/g, ' ').trim())).toEqual(['Probe', 'Cliff 3', 'Heads', 'Ablate']);
    expect(tabs.map((t) => t.getAttribute('aria-selected'))).toEqual(['false', 'true', 'false', 'false']);
    expect(tabs[3]!.querySelector('.badge')).toBeNull();
    expect(selectedTab()).toBe('Cliff');
    expect(screen.getAllByRole('tabpanel')).toHaveLength(1);
  });

  it('ArrowRight / ArrowLeft move selection and focus, wrapping at the ends', async () => {
    const list = setup('heads');
    await fireEvent.keyDown(screen.getByRole('tab', { name: 'Heads' }), { key: 'ArrowRight' });
    expect(selectedTab()).toBe('Ablate');
    expect(document.activeElement).toBe(screen.getByRole('tab', { name: 'Ablate' }));

    await fireEvent.keyDown(document.activeElement!, { key: 'ArrowRight' });
    expect(selectedTab()).toBe('Probe');
    expect(document.activeElement).toBe(screen.getByRole('tab', { name: 'Probe' }));

    await fireEvent.keyDown(document.activeElement!, { key: 'ArrowLeft' });
    expect(selectedTab()).toBe('Ablate');
    expect(document.activeElement).toBe(screen.getByRole('tab', { name: 'Ablate' }));

    await fireEvent.keyDown(list, { key: 'ArrowLeft' });
    expect(selectedTab()).toBe('Heads');
    expect(document.activeElement).toBe(screen.getByRole('tab', { name: 'Heads' }));
  });

  it('ArrowDown / ArrowUp work like right / left', async () => {
    setup('probe');
    await fireEvent.keyDown(screen.getByRole('tab', { name: 'Probe' }), { key: 'ArrowDown' });
    expect(selectedTab()).toBe('Cliff');
    await fireEvent.keyDown(document.activeElement!, { key: 'ArrowUp' });
    await fireEvent.keyDown(document.activeElement!, { key: 'ArrowUp' });
    expect(selectedTab()).toBe('Ablate');
  });

  it('Home and End jump to the first and last tab', async () => {
    setup('cliff');
    await fireEvent.keyDown(screen.getByRole('tab', { name: /Cliff/ }), { key: 'End' });
    expect(selectedTab()).toBe('Ablate');
    expect(document.activeElement).toBe(screen.getByRole('tab', { name: 'Ablate' }));
    await fireEvent.keyDown(document.activeElement!, { key: 'Home' });
    expect(selectedTab()).toBe('Probe');
    expect(document.activeElement).toBe(screen.getByRole('tab', { name: 'Probe' }));
  });

  it('claims the keys it handles and leaves the others alone', async () => {
    setup('cliff');
    const cliff = screen.getByRole('tab', { name: /Cliff/ });
    // fireEvent resolves to false when the handler called preventDefault().
    expect(await fireEvent.keyDown(cliff, { key: 'a' })).toBe(true);
    expect(await fireEvent.keyDown(cliff, { key: 'Enter' })).toBe(true);
    expect(selectedTab()).toBe('Cliff');
    expect(await fireEvent.keyDown(cliff, { key: 'ArrowRight' })).toBe(false);
    expect(selectedTab()).toBe('Heads');
  });

  it('a click selects a tab (without moving focus there by script)', async () => {
    setup('probe');
    await fireEvent.click(screen.getByRole('tab', { name: 'Heads' }));
    expect(selectedTab()).toBe('Heads');
    await fireEvent.click(screen.getByRole('tab', { name: 'Probe' }));
    expect(selectedTab()).toBe('Probe');
  });
});
