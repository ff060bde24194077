import { expect, test } from '@playwright/test';
import { adminPassword, hydrated, signIn } from './helpers';

// The demo configuration gives Development a slow, read-only "usage-report" action (a line a
// second for 30 s) and a "delete-drafts" action.

test.describe('with JavaScript', () => {
  test.beforeEach(async ({ page }) => signIn(page, 'admin', adminPassword));

  test('start an action, watch its log lines arrive live, cancel it', async ({ page }) => {
    await page.goto('/environments/dev');
    await hydrated(page);
    const form = page.locator('form[data-action="usage-report"]');
    await form.getByLabel('Reason').fill('e2e: watch the live log');
    await form.getByRole('button', { name: 'Run' }).click();

    // The new job's page.
    await expect(page).toHaveURL(/\/jobs\/\d+$/);
    await hydrated(page);
    const log = page.getByTestId('job-log');
    await expect(page.getByTestId('job-status')).toHaveText('running');
    // Lines the program prints a second apart appear without reloading the page.
    await expect(log).toContainText('check 1 of 30');
    await expect(log).toContainText('check 3 of 30');
    const url = page.url();
    await page.screenshot({ path: 'test-results/job-running.png', fullPage: true });

    await page.getByTestId('cancel-job').click();
    await expect(page.getByTestId('job-status')).toHaveText('cancelled');
    await expect(log).toContainText('Cancelled by admin.');
    await expect(page.getByTestId('job-error')).toHaveText('Cancelled by admin.');
    expect(page.url()).toBe(url);
    await expect(page.getByTestId('retry-job')).toBeVisible();
    await page.screenshot({ path: 'test-results/job-cancelled.png', fullPage: true });
  });

  test('the follow toggle pauses and resumes', async ({ page }) => {
    await page.goto('/jobs');
    await hydrated(page);
    await expect(page.getByRole('heading', { name: 'Jobs' })).toBeVisible();
    await page.locator('table.jobs a').first().click();
    await hydrated(page);
    const toggle = page.getByTestId('follow-toggle');
    await expect(toggle).toHaveText('Pause');
    await toggle.click();
    await expect(toggle).toHaveText('Follow');
    await expect(toggle).toHaveAttribute('aria-pressed', 'false');
  });
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });
  test.beforeEach(async ({ page }) => signIn(page, 'admin', adminPassword, { js: false }));

  test('a job runs from a plain form and its page shows the log so far', async ({ page }) => {
    await page.goto('/environments/dev');
    const form = page.locator('form[data-action="delete-drafts"]');
    await form.getByLabel('Reason').fill('e2e without JavaScript');
    await form.getByRole('button', { name: 'Run' }).click();
    await expect(page).toHaveURL(/\/jobs\/\d+$/);
    // The job takes a few seconds; reloading shows how far it got, then its end.
    await expect(async () => {
      await page.reload();
      await expect(page.getByTestId('job-status')).toHaveText('succeeded', { timeout: 1000 });
    }).toPass({ timeout: 20_000 });
    await expect(page.getByTestId('job-log')).toContainText('Deleted 2 drafts');
    await expect(page.getByRole('link', { name: 'Download as text' })).toBeVisible();
  });

  test('the jobs list filters with plain links', async ({ page }) => {
    await page.goto('/jobs');
    await page.getByRole('navigation', { name: 'State' }).getByRole('link', { name: 'succeeded' }).click();
    await expect(page).toHaveURL(/\/jobs\?state=succeeded$/);
    await expect(page.locator('table.jobs .job-status').first()).toHaveText('succeeded');
  });
});
