import { expect, test } from '@playwright/test';
import { adminPassword, hydrated, signIn, signOut } from './helpers';

// The demo configuration's "demo" environment ("Demo shop") has two resources, site (a
// directory) and shop-db (a SQLite file), with data made by `steward demo init`, and expects a
// backup at least every 24 hours.

/** A size as the pages print it: "830 KiB", "12.3 MiB", "512 bytes". */
const SIZE = /^\d+(\.\d)? (bytes?|KiB|MiB|GiB)$/;

test.describe('with JavaScript', () => {
  test.beforeEach(async ({ page }) => signIn(page, 'admin', adminPassword));

  test('back up now, follow the job, find the backup in the list and open it', async ({ page }) => {
    const description = `e2e: before the upgrade ${Date.now()}`;
    await page.goto('/environments/demo');
    await hydrated(page);
    const panel = page.locator('section.backups-panel');
    await expect(panel.getByRole('heading', { name: 'Backups' })).toBeVisible();
    await expect(panel.getByTestId('backup-status')).toContainText('shop-db (sqlite), site (directory)');
    await page.screenshot({ path: 'test-results/backups-environment-before.png', fullPage: true });

    const form = page.getByTestId('backup-now');
    await form.getByLabel('Description').fill(description);
    await form.getByRole('button', { name: 'Back up now' }).click();

    // The backup job's page, following its log until it succeeds.
    await expect(page).toHaveURL(/\/jobs\/\d+$/);
    await hydrated(page);
    const log = page.getByTestId('job-log');
    await expect(page.getByTestId('job-status')).toHaveText('succeeded', { timeout: 30_000 });
    await expect(log).toContainText('Backing up site (directory)');
    await expect(log).toContainText('Backing up shop-db (sqlite)');
    await expect(log).toContainText('is complete');
    await expect(page.getByTestId('log-status')).toHaveText('Finished: this is the whole log.');
    await expect(page.getByTestId('job-progress')).toHaveText('100%');
    await expect(page.getByTestId('job-backup')).toContainText('is complete');
    const backupId = (await page.getByTestId('job-backup').getByRole('link').textContent()) ?? '';
    expect(backupId).toMatch(/^demo-\d{8}-\d{4}-[0-9a-f]{4}$/);
    await page.screenshot({ path: 'test-results/backups-job.png', fullPage: true });

    // The environment's page now shows a fresh backup, not in red.
    await page.goto('/environments/demo');
    await hydrated(page);
    const status = page.getByTestId('backup-status');
    await expect(status).toContainText('Last backup just now');
    await expect(status).toHaveAttribute('data-overdue', 'false');
    await page.getByRole('link', { name: 'All backups' }).click();

    // The list: the new backup on top with its description and size.
    await expect(page).toHaveURL(/\/environments\/demo\/backups$/);
    await hydrated(page);
    await expect(page.getByTestId('size-chart')).toBeVisible();
    const row = page.locator(`tr[data-backup="${backupId}"]`);
    await expect(row).toContainText(description);
    await expect(row.locator('td.num')).toHaveText(SIZE);
    await expect(row.locator('.verify')).toHaveText('ok');
    await expect(page.locator('table.backups tbody tr').first()).toHaveAttribute('data-backup', backupId);
    await page.screenshot({ path: 'test-results/backups-list.png', fullPage: true });

    // Ordered by size, then back to newest first.
    await page.getByTestId('sort-size').click();
    await expect(page).toHaveURL(/sort=largest/);
    await expect(page.locator('th[aria-sort="descending"]')).toContainText('Size');
    await page.getByTestId('sort-time').click();
    await expect(page).toHaveURL(/\/environments\/demo\/backups$/);

    // The backup's page: the database file with its checksum, the directory as a tree in the
    // repository (its blocks are checked by the repository).
    await page.locator(`tr[data-backup="${backupId}"] a`).first().click();
    await expect(page).toHaveURL(new RegExp(`/backups/${backupId}$`));
    await hydrated(page);
    await expect(page.getByRole('heading', { name: `Backup ${backupId}` })).toBeVisible();
    await expect(page.getByTestId('backup-description')).toHaveText(description);
    for (const [resource, driver] of [['site', 'directory'], ['shop-db', 'sqlite']]) {
      const artifact = page.locator(`table.artifacts tr[data-resource="${resource}"]`);
      await expect(artifact).toContainText(driver);
      await expect(artifact.locator('td.num')).toHaveText(SIZE);
      if (resource === 'site') {
        await expect(artifact).toContainText('site/');
        await expect(artifact).toContainText('a tree: each block checked');
      } else {
        await expect(artifact.locator('code.sha')).toHaveAttribute('title', /^[0-9a-f]{64}$/);
      }
    }
    await expect(page.getByTestId('backup-env-facts')).toContainText('host');
    await page.screenshot({ path: 'test-results/backups-backup.png', fullPage: true });
  });

  test('an unknown backup is a plain "not found"', async ({ page }) => {
    const response = await page.goto('/backups/demo-19700101-0000-0000');
    expect(response?.status()).toBe(404);
    await expect(page.getByRole('alert')).toHaveText('Backup "demo-19700101-0000-0000" not found.');
  });
});

test('a viewer sees the backups but cannot start one', async ({ page }) => {
  // A viewer of this run's own: the other specs' users have fixed names.
  const username = `vera${Date.now()}`;
  await signIn(page, 'admin', adminPassword);
  await page.goto('/users');
  await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Role', { exact: true }).selectOption('viewer');
  await page.getByRole('button', { name: 'Add user' }).click();
  const password = (await page.getByTestId('new-password').textContent()) ?? '';
  await signOut(page);

  await signIn(page, username, password);
  await page.goto('/environments/demo');
  await hydrated(page);
  await expect(page.getByTestId('backup-status')).toBeVisible();
  await expect(page.locator('section.backups-panel')).toContainText('Operators and admins can start a backup.');
  await expect(page.getByTestId('backup-now')).toHaveCount(0);
  await page.goto('/environments/demo/backups');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Backups' })).toBeVisible();
  await expect(page.getByTestId('backup-now')).toHaveCount(0);

  // The server says no, whatever the page shows.
  const response = await page.request.post('/api/backups/start', {
    form: { environment: 'demo', description: 'not allowed' },
    headers: { accept: 'application/json' },
  });
  expect(await response.text()).toBe('"Forbidden"');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });
  test.beforeEach(async ({ page }) => signIn(page, 'admin', adminPassword, { js: false }));

  test('a backup starts from a plain form and the list orders with plain links', async ({ page }) => {
    const description = `e2e without JavaScript ${Date.now()}`;
    await page.goto('/environments/demo');
    const form = page.getByTestId('backup-now');
    await form.getByLabel('Description').fill(description);
    await form.getByRole('button', { name: 'Back up now' }).click();
    await expect(page).toHaveURL(/\/jobs\/\d+$/);
    await expect(async () => {
      await page.reload();
      await expect(page.getByTestId('job-status')).toHaveText('succeeded', { timeout: 1000 });
    }).toPass({ timeout: 30_000 });
    await expect(page.getByTestId('job-log')).toContainText('is complete');

    await page.goto('/environments/demo/backups');
    await expect(page.getByTestId('backup-count')).toContainText(/\d+ backups?/);
    await expect(page.locator('table.backups tbody tr').first()).toContainText(description);
    await page.getByTestId('sort-size').click();
    await expect(page).toHaveURL(/\/environments\/demo\/backups\?sort=largest$/);
    await expect(page.locator('table.backups tbody tr', { hasText: description })).toHaveCount(1);
    await page.screenshot({ path: 'test-results/backups-list-no-js.png', fullPage: true });
  });
});
