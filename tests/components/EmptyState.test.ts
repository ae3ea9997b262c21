// @vitest-environment jsdom
import { render, screen } from '@testing-library/svelte';
import { createRawSnippet } from 'svelte';
import { describe, expect, it } from 'vitest';
import EmptyState from '../../src/renderer/src/components/EmptyState.svelte';

describe('EmptyState', () => {
  it('says what is missing as a status, and what to do next', () => {
    const children = createRawSnippet(() => ({ render: () => '<p>Open a project to start.</p>' }));
    render(EmptyState, { props: { title: 'No runs yet', children } });
    const status = screen.getByRole('status');
    expect(status.querySelector('.title')?.textContent).toBe('No runs yet');
    expect(screen.getByText('Open a project to start.').closest('.next')).not.toBeNull();
  });

  it('renders only the title without children', () => {
    const { container } = render(EmptyState, { props: { title: 'Nothing here' } });
    expect(screen.getByRole('status').textContent?.trim()).toBe('Nothing here');
    expect(container.querySelector('.next')).toBeNull();
  });
});
