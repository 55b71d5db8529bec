// The rules the forms check as you type — names and password length — as core states them
// (the `input_rules` command), loaded once at start, so that no view spells a rule again and
// the console never accepts or refuses what the command line would not. Core checks every
// value once more; these only let a form say what is wrong before anything is sent.

import { inputRules } from './ipc.js';

let rules = null;
let namePattern = null;

/** Loads the rules; the console calls it once before the first screen. */
export async function loadRules() {
  rules = await inputRules();
  namePattern = new RegExp(rules.name_pattern);
}

/** Whether `value` follows the one rule for names (jobs, policies, computers, accounts). */
export function validName(value) {
  return namePattern !== null && namePattern.test(value);
}

const NOT_LOADED = 'The console could not load its input rules; restart it.';

/** What a name must look like, as a sentence for a field's error. */
export function nameError() {
  return rules ? `Use ${rules.name_rule}.` : NOT_LOADED;
}

/** Whether a password is long enough. */
export function validPassword(value) {
  return rules !== null && [...value].length >= rules.password_min;
}

/** How long a password must be, as a sentence for a field's error. */
export function passwordError() {
  return rules ? `Use at least ${rules.password_min} characters.` : NOT_LOADED;
}

/** How long a password must be, as a field's hint. */
export function passwordHint() {
  return rules ? `At least ${rules.password_min} characters.` : '';
}
