import * as fs from 'node:fs';
import { expect, test } from '@playwright/test';
import { adminPassword, hydrated, signIn } from './helpers';

// Download and Upload of a backup's export (one instance here; the import on a second
// instance, and the restore there, are in server/tests/transfer.rs).

/** Where entry `name`'s data starts in a tar, and its size (512-byte headers, octal sizes). */
function tarEntry(tar: Buffer, name: string): { at: number; size: number } {
  let offset = 0;
  while (offset + 512 <= tar.length && tar[offset] !== 0) {
    const header = tar.subarray(offset, offset + 512);
    const entryName = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(header.subarray(124, 136).toString('utf8').replace(/\0.*$/s, '').trim(), 8);
    if (entryName === name) return { at: offset + 512, size };
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no ${name} in the export`);
}

test('download a backup, upload it back: a changed file is refused whole, a known one too', async ({
  page,
}, testInfo) => {
  await signIn(page, 'admin', adminPassword);

  // A backup to move.
  await page.goto('/environments/demo/backups');
  await hydrated(page);
  const form = page.getByTestId('backup-now');
  await form.getByLabel('Description').fill(`e2e: to download ${Date.now()}`);
  await form.getByRole('button', { name: 'Back up now' }).click();
  await expect(page).toHaveURL(/\/jobs\/\d+$/);
  await hydrated(page);
  await expect(page.getByTestId('job-status')).toHaveText('succeeded', { timeout: 30_000 });
  const backupId = (await page.getByTestId('job-backup').getByRole('link').textContent()) ?? '';

  // Download, from the backup's page: one tar named after the backup, with its manifest.
  await page.goto(`/backups/${backupId}`);
  await hydrated(page);
  const offer = page.getByTestId('download-offer');
  await expect(offer).toContainText('readable without Steward');
  await page.screenshot({ path: 'test-results/transfer-backup-download.png', fullPage: true });
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    offer.getByRole('link', { name: 'Download' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe(`steward-${backupId}.tar`);
  const file = testInfo.outputPath(`steward-${backupId}.tar`);
  await download.saveAs(file);
  const exported = fs.readFileSync(file);
  const manifest = tarEntry(exported, `${backupId}/manifest.json`);
  const manifestJson = JSON.parse(exported.subarray(manifest.at, manifest.at + manifest.size).toString('utf8'));
  expect(manifestJson.id).toBe(backupId);
  expect(manifestJson.artifacts.map((a: { file: string }) => a.file).sort()).toEqual([
    'shop-db/database.sqlite',
    'site/files.tar.zst',
  ]);

  // The Backups page: what the backups take in the repository, and the Upload form.
  await page.goto('/environments/demo/backups');
  await hydrated(page);
  const storage = page.getByTestId('storage');
  await expect(storage.getByTestId('storage-line')).toContainText(/\d+ backups? takes? .* in the repository; as full copies they would take/);
  await expect(storage.getByTestId('upload-form')).toContainText('Up to 20.0 GiB');
  await storage.scrollIntoViewIfNeeded();
  await page.screenshot({ path: 'test-results/transfer-storage-upload.png', fullPage: true });

  // One byte of the site's archive changed: the import job refuses it, nothing is imported.
  const tampered = Buffer.from(exported);
  const site = tarEntry(tampered, `${backupId}/site/files.tar.zst`);
  tampered[site.at + Math.floor(site.size / 2)] ^= 0xff;
  const tamperedFile = testInfo.outputPath('tampered.tar');
  fs.writeFileSync(tamperedFile, tampered);
  await page.getByTestId('upload-form').locator('input[type="file"]').setInputFiles(tamperedFile);
  await page.getByRole('button', { name: 'Upload and import' }).click();
  await expect(page).toHaveURL(/\/jobs\/\d+$/);
  await hydrated(page);
  await expect(page.getByTestId('job-status')).toHaveText('failed', { timeout: 30_000 });
  await expect(page.getByTestId('job-log')).toContainText('tampered.tar was not imported, it does not match its manifest');
  // Its upload is gone with it: no Retry, the file is uploaded again instead.
  await expect(page.getByTestId('retry-job')).toHaveCount(0);
  await page.screenshot({ path: 'test-results/transfer-upload-tampered.png', fullPage: true });

  // The file as downloaded: every checksum matches, but this instance has that backup already.
  await page.goto('/environments/demo/backups');
  await hydrated(page);
  await page.getByTestId('upload-form').locator('input[type="file"]').setInputFiles(file);
  await page.getByRole('button', { name: 'Upload and import' }).click();
  await expect(page).toHaveURL(/\/jobs\/\d+$/);
  await hydrated(page);
  await expect(page.getByTestId('job-status')).toHaveText('failed', { timeout: 30_000 });
  const log = page.getByTestId('job-log');
  await expect(log).toContainText('Every file matches the manifest');
  await expect(log).toContainText(`backup ${backupId} is already in this catalog`);
});
