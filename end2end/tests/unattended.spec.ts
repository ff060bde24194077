import { expect, test, type Page } from '@playwright/test';
import { adminPassword, hydrated, signIn } from './helpers';

// What runs without anyone clicking. The demo configuration's "demo" environment has a nightly
// backup schedule (scripts/test.sh moves it to 1 January for these tests) and retention rules
// (keep_last 3, keep_daily 7, keep_weekly 4, keep_monthly 6); its "test" environment expects a
// daily backup and never gets one, so the dashboard shows it red.

/** Takes a backup of the demo shop from its page and waits for the job to succeed. */
async function backUpDemo(page: Page, description: string) {
  await page.goto('/environments/demo');
  await hydrated(page);
  const form = page.getByTestId('backup-now');
  await form.getByLabel('Description').fill(description);
  await form.getByRole('button', { name: 'Back up now' }).click();
  await expect(page).toHaveURL(/\/jobs\/\d+$/);
  await expect(page.getByTestId('job-status')).toHaveText('succeeded', { timeout: 30_000 });
}

test.beforeEach(async ({ page }) => signIn(page, 'admin', adminPassword));

test('the dashboard shows an overdue environment red and a healthy one green with its next backup', async ({ page }) => {
  await backUpDemo(page, 'e2e: dashboard');

  // The environment's page: its schedule with the next run, and its retention rules in words.
  const schedules = page.getByTestId('schedules');
  await page.goto('/environments/demo');
  await hydrated(page);
  await expect(schedules.locator('[data-schedule="nightly"]')).toContainText('backup · "0 2 1 1 *" · Europe/Berlin');
  await expect(schedules.getByTestId('schedule-next')).toContainText(/^Next in \d+ days?/);
  await expect(page.getByTestId('retention')).toContainText('the 3 newest backups');
  await page.screenshot({ path: 'test-results/environment-schedules.png', fullPage: true });

  await page.goto('/environments');
  await hydrated(page);
  const overdue = page.locator('.env-card[data-env="test"]');
  await expect(overdue).toHaveAttribute('data-status', 'backup overdue');
  await expect(overdue.getByTestId('health-status')).toHaveClass(/health-bad/);
  await expect(overdue.getByTestId('health-status')).toContainText('no backup yet; one is expected every 24 hours');
  await expect(overdue.getByTestId('health-status')).toHaveCSS('color', 'rgb(183, 28, 28)');

  const healthy = page.locator('.env-card[data-env="demo"]');
  await expect(healthy).toHaveAttribute('data-status', 'ok');
  await expect(healthy.getByTestId('health-status')).toHaveClass(/health-ok/);
  await expect(healthy.getByTestId('health-status')).toHaveCSS('color', 'rgb(27, 94, 32)');
  await expect(healthy.getByTestId('health-next')).toHaveText(/^Next backup in \d+ days?( \d+ hours?)?$/);
  await expect(healthy).toContainText('Last backup just now');
  await expect(healthy).toContainText(/\d+(\.\d)? (bytes?|KiB|MiB) in \d+ backups?/);
  await page.screenshot({ path: 'test-results/dashboard.png', fullPage: true });
});

test('an admin previews retention, pins a backup that would go, and applies the rules', async ({ page }) => {
  // Enough backups, all of today, that keep_last 3 and daily 7 leave some to remove: the
  // newest 3, and the oldest (daily finds only today, so borg's rule keeps the oldest too).
  // A second apart: keep_last counts one backup per second, as borg does.
  for (let i = 0; i < 5; i++) {
    await page.waitForTimeout(1_100);
    await backUpDemo(page, `e2e: retention ${i}`);
  }

  await page.goto('/environments/demo');
  await hydrated(page);
  await page.getByTestId('retention').getByRole('link', { name: 'Preview and apply' }).click();
  await expect(page).toHaveURL(/\/environments\/demo\/retention$/);
  await hydrated(page);
  const rows = page.getByTestId('retention-table').locator('tbody tr');
  await expect(rows.first().getByTestId('verdict')).toHaveText('keep — last 1 of 3');
  const removals = page.locator('tr[data-keep="false"]');
  const before = await removals.count();
  expect(before).toBeGreaterThan(0);

  // Pin the first one that would go: it is kept, and says by whom and why.
  const victim = (await removals.first().getAttribute('data-backup')) ?? '';
  const row = page.locator(`tr[data-backup="${victim}"]`);
  await row.getByLabel('Reason').fill('e2e: needed for the audit');
  await row.getByRole('button', { name: 'Pin' }).click();
  await expect(row.getByTestId('verdict')).toHaveText('keep — pinned by admin: e2e: needed for the audit');
  await expect(removals).toHaveCount(before - 1);
  await expect(page.getByTestId('retention-summary')).toContainText(`${before - 1} to remove`);
  await page.screenshot({ path: 'test-results/retention-preview.png', fullPage: true });

  // Apply: a prune job removes exactly those.
  await page.getByRole('button', { name: 'Apply retention now' }).click();
  await expect(page).toHaveURL(/\/jobs\/\d+$/);
  await hydrated(page);
  await expect(page.getByTestId('job-status')).toHaveText('succeeded', { timeout: 30_000 });
  await expect(page.getByTestId('job-log')).toContainText(`Removed ${before - 1} backup${before - 1 === 1 ? '' : 's'}.`);
  // The repository is pruned and says what that gave back.
  await expect(page.getByTestId('job-log')).toContainText(/The repository went from .* freed/);
  await page.screenshot({ path: 'test-results/retention-applied.png', fullPage: true });

  await page.goto('/environments/demo/retention');
  await hydrated(page);
  await expect(page.locator('tr[data-keep="false"]')).toHaveCount(0);
  await expect(page.locator(`tr[data-backup="${victim}"]`)).toBeVisible();

  // The backup's own page says it is pinned, by whom and why.
  await page.goto(`/backups/${victim}`);
  await hydrated(page);
  await expect(page.getByTestId('backup-pin')).toContainText('Pinned by admin at');
  await expect(page.getByTestId('backup-pin')).toContainText('e2e: needed for the audit');
});

test('retention and pins work without JavaScript', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await signIn(page, 'admin', adminPassword, { js: false });
  await page.goto('/environments/demo/retention');
  const pinned = page.locator('tr', { hasText: 'pinned by admin' }).first();
  const id = (await pinned.getAttribute('data-backup')) ?? '';
  await pinned.getByLabel('Reason').fill('e2e: audit closed');
  await pinned.getByRole('button', { name: 'Unpin' }).click();
  await expect(page).toHaveURL(/\/environments\/demo\/retention$/);
  await expect(page.locator(`tr[data-backup="${id}"]`).getByTestId('verdict')).not.toContainText('pinned');

  // Pinned again from the backup's page, still without JavaScript.
  await page.goto(`/backups/${id}`);
  await expect(page.getByTestId('backup-pin')).toContainText('No: retention may remove it');
  await page.getByTestId('pin-form').getByLabel('Reason').fill('e2e: pinned from its page');
  await page.getByTestId('pin-form').getByRole('button', { name: 'Pin' }).click();
  await expect(page).toHaveURL(new RegExp(`/backups/${id}$`));
  await expect(page.getByTestId('backup-pin')).toContainText('Pinned by admin at');
  await page.screenshot({ path: 'test-results/backup-pinned.png', fullPage: true });
  await context.close();
});
