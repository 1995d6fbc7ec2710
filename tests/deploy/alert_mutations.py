"""Proves each alert's unit tests can fail: for every rule in security.yml, a copy whose expression
never fires must fail its "fires" case, and a copy that always fires (the threshold replaced by
>= 0) must fail its "stays quiet" case. promtool must name the alert in both failures.

Usage: python3 alert_mutations.py RULES.yml TESTS.yml (needs promtool and PyYAML)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml


def run_tests(rules, tests_path, work):
    """Write `rules` next to a copy of the test file; promtool's exit code and output."""
    with open(os.path.join(work, "security.yml"), "w") as f:
        yaml.safe_dump(rules, f, sort_keys=False)
    shutil.copy(tests_path, os.path.join(work, "security.test.yml"))
    p = subprocess.run(
        ["promtool", "test", "rules", "security.test.yml"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    return p.returncode, p.stdout + p.stderr


def main():
    rules_path, tests_path = sys.argv[1], sys.argv[2]
    with open(rules_path) as f:
        original = yaml.safe_load(f)
    passed = failed = 0
    with tempfile.TemporaryDirectory() as work:
        code, out = run_tests(original, tests_path, work)
        if code != 0:
            print(out)
            print("the unmutated rules fail their tests", file=sys.stderr)
            return 1
        # One run per kind of mutation, with every rule mutated at once: each alert's test
        # cases evaluate that alert alone, so each rule's mutation shows in its own cases.
        mutations = {"never fires": {}, "always fires": {}}
        names = []
        for group in original["groups"]:
            for rule in group["rules"]:
                name = rule["alert"]
                names.append(name)
                expr = rule["expr"].strip()
                bare = re.sub(r"\s*>\s*[0-9.]+$", "", expr)
                if bare == expr:
                    print(f"FAILED: {name}: expression does not end in `> THRESHOLD`", file=sys.stderr)
                    failed += 1
                    continue
                mutations["never fires"][name] = f"({expr}) and on() (vector(0) > 1)"
                mutations["always fires"][name] = f"({bare}) >= 0"
        for kind, exprs in mutations.items():
            rules = yaml.safe_load(yaml.safe_dump(original))
            for group in rules["groups"]:
                for rule in group["rules"]:
                    if rule["alert"] in exprs:
                        rule["expr"] = exprs[rule["alert"]]
            code, out = run_tests(rules, tests_path, work)
            for name in exprs:
                # promtool names each failing case's alert as "alertname: NAME,".
                if code != 0 and re.search(rf"alertname: {re.escape(name)}\b", out):
                    passed += 1
                else:
                    print(f"FAILED: {name} that {kind} still passes its tests", file=sys.stderr)
                    failed += 1
    print(f"alert-mutations: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
