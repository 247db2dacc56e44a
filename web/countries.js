// The ISO 3166-1 countries (GET /v1/countries: [{code, name, vat}], sorted by name), loaded
// once per page load and shared by the pages that offer a country picker (Organization,
// the first-purchase questions on Plans & Billing).
import { get } from './api.js';

let cache = null;

export async function loadCountries(signal) {
  if (!cache) cache = (await get('/v1/countries', { signal })).data;
  return cache;
}
