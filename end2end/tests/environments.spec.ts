import { expect, test } from '@playwright/test';
import { adminPassword, hydrated, signIn } from './helpers';

// The demo configuration has three environments: Development, Test and Production.

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });
  test.beforeEach(async ({ page }) => signIn(page, 'admin', adminPassword, { js: false }));

  test('the Environments page is complete as the server sends it', async ({ page }) => {
    await page.goto('/');
    await expect(page).toHaveURL(/\/environments$/);
    await expect(page.getByRole('heading', { name: 'Environments' })).toBeVisible();
    await expect(page.locator('.env-card')).toHaveCount(4);
    for (const label of ['Development', 'Test', 'Production']) {
      await expect(page.locator('.env-cards')).toContainText(label);
    }
    await expect(page.getByTestId('env-count')).toHaveText('4 environments');
    await expect(page.getByRole('link', { name: 'Steward' })).toBeVisible();
  });

  test('the filter works as a plain form: type, press Enter', async ({ page }) => {
    await page.goto('/environments');
    await page.getByLabel('Filter').fill('prod');
    await page.getByLabel('Filter').press('Enter');
    await expect(page).toHaveURL(/\/environments\?q=prod$/);
    await expect(page.locator('.env-card')).toHaveCount(1);
    await expect(page.getByTestId('env-count')).toHaveText('1 of 4 environments');
    await expect(page.getByLabel('Filter')).toHaveValue('prod');
  });

  test('the environment switcher is a list of links', async ({ page }) => {
    await page.goto('/environments');
    await page.locator('.env-switcher summary').click();
    await page.locator('.env-switcher').getByRole('link', { name: 'Production' }).click();
    await expect(page).toHaveURL(/\/environments\/prod$/);
    await expect(page.getByRole('heading', { level: 1 })).toContainText('Production');
    await expect(page.locator('.env-switcher summary')).toContainText('Production');
  });
});

test.describe('with JavaScript', () => {
  test.beforeEach(async ({ page }) => signIn(page, 'admin', adminPassword));
  test('the hydrated filter narrows the list as you type, without a page load', async ({ page }) => {
    await page.goto('/environments');
    await hydrated(page);

    await page.getByLabel('Filter').pressSequentially('dev');
    await expect(page.locator('.env-card')).toHaveCount(1);
    await expect(page.locator('.env-card')).toContainText('Development');
    await expect(page.getByTestId('env-count')).toHaveText('1 of 4 environments');
    await expect(page).toHaveURL(/\/environments$/); // filtered in the browser, not by a new request

    await page.getByLabel('Filter').fill('nothing-like-this');
    await expect(page.getByText('No environment matches "nothing-like-this".')).toBeVisible();
    await page.getByLabel('Filter').fill('');
    await expect(page.locator('.env-card')).toHaveCount(4);
  });

  test('choosing an environment in the switcher navigates in the app', async ({ page }) => {
    await page.goto('/environments');
    await hydrated(page);
    await page.locator('.env-switcher summary').click();
    await page.locator('.env-switcher').getByRole('link', { name: 'Test' }).click();
    await expect(page).toHaveURL(/\/environments\/test$/);
    await expect(page.getByRole('heading', { level: 1 })).toContainText('Test');
    await expect(page.locator('.env-switcher summary')).toContainText('Test');
    await page.screenshot({ path: 'test-results/environment-test.png', fullPage: true });
  });

  test('an unknown environment says so', async ({ page }) => {
    const response = await page.goto('/environments/nope');
    expect(response?.status()).toBe(404);
    await expect(page.getByRole('alert')).toHaveText('Environment "nope" not found.');
  });
});
