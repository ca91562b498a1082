// Numbers and dates for display. Money arrives as decimal strings and is rounded as a decimal
// (half up, on the digits themselves), never through a float, so what the page shows is the
// report's figure rounded — the browser test checks exactly that.

const GROUP = /\B(?=(\d{3})+(?!\d))/g;

export function roundDecimal(text, places) {
  let s = String(text).trim();
  if (/e/i.test(s)) s = Number(s).toFixed(places + 2); // not from the gateway; still shown
  const neg = s.startsWith("-");
  if (neg || s.startsWith("+")) s = s.slice(1);
  const [whole, frac = ""] = s.split(".");
  const kept = BigInt((whole || "0") + frac.padEnd(places + 1, "0").slice(0, places + 1));
  let units = kept / 10n;
  if (kept % 10n >= 5n) units += 1n;
  const digits = units.toString().padStart(places + 1, "0");
  const intPart = digits.slice(0, digits.length - places).replace(GROUP, ",");
  const fracPart = places ? "." + digits.slice(digits.length - places) : "";
  const sign = neg && units !== 0n ? "-" : "";
  return sign + intPart + fracPart;
}

// Cents from $100 up; below that four places, where a day's local spend still shows.
export function money(text) {
  if (text === null || text === undefined) return "—";
  const places = Math.abs(Number(text)) >= 100 ? 2 : 4;
  const rounded = roundDecimal(text, places);
  return rounded.startsWith("-") ? "-$" + rounded.slice(1) : "$" + rounded;
}

export function integer(n) {
  return n === null || n === undefined ? "—" : String(n).replace(GROUP, ",");
}

export function ms(n) {
  return n === null || n === undefined ? "—" : roundDecimal(String(n), 0) + " ms";
}

export function percent(fraction) {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return "—";
  return (fraction * 100).toFixed(1) + "%";
}

export function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

// Today's date in a time zone (en-CA writes dates as YYYY-MM-DD).
export function today(tz) {
  try {
    return new Intl.DateTimeFormat("en-CA", { timeZone: tz }).format(new Date());
  } catch {
    return isoDay(new Date());
  }
}

export function addDays(day, n) {
  const d = new Date(day + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + n);
  return isoDay(d);
}

// Every day from `since` through `until`, both included, so a day without requests is a gap
// in the bars rather than missing from the axis.
export function daysBetween(since, until) {
  const days = [];
  for (let d = since; d <= until && days.length < 3660; d = addDays(d, 1)) days.push(d);
  return days;
}

export function hourLabel(hour) {
  if (typeof hour === "number") return String(hour).padStart(2, "0") + ":00";
  const s = String(hour);
  return s.length >= 13 ? s.slice(5, 10) + " " + s.slice(11, 13) + ":00" : s;
}
