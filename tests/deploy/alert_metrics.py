"""Every metric selector in the alert rules matches a series that a real Sigil exposes: the
name exists, and each `label="value"` matcher names a label value present in the scrape
(Sigil creates its zero series at start, so a fresh scrape has them all).

Usage: python3 alert_metrics.py RULES.yml METRICS.txt (the text of GET /metrics)."""

import re
import sys

SELECTOR = re.compile(r"\b(sigil_[a-z_]+)(\{[^}]*\})?")
MATCHER = re.compile(r'([a-z_]+)\s*=\s*"([^"]*)"')
SERIES = re.compile(r"^(sigil_[a-z_]+)(?:\{([^}]*)\})?\s")


def main():
    rules_text = open(sys.argv[1]).read()
    exposed = {}
    for line in open(sys.argv[2]):
        m = SERIES.match(line)
        if m:
            labels = dict(MATCHER.findall(m.group(2) or ""))
            exposed.setdefault(m.group(1), []).append(labels)
    passed = failed = 0
    exprs = [line for line in rules_text.splitlines() if not line.lstrip().startswith("#")]
    seen = set()
    for name, matchers in SELECTOR.findall("\n".join(exprs)):
        key = (name, matchers)
        if key in seen:
            continue
        seen.add(key)
        wanted = dict(MATCHER.findall(matchers))
        series = exposed.get(name, [])
        if any(all(s.get(k) == v for k, v in wanted.items()) for s in series):
            passed += 1
        else:
            failed += 1
            print(f"FAILED: {name}{matchers} matches nothing Sigil exposes", file=sys.stderr)
    if passed == 0:
        print("FAILED: no sigil_ selector found in the rules", file=sys.stderr)
        failed += 1
    print(f"alert-metrics: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
