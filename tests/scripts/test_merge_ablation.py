#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""scripts/merge-ablation: merged means and sample standard deviations computed by hand from
the inputs, every (arm, seed) kept once, the teacher once per seed; refusals with a message."""
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "merge-ablation")


def run_json(seed, arms, teacher_hiou, config=None):
    """An ablation.json of one seed in zss-train-toy's layout; arms = {arm: (S, U, H)}."""
    def metrics(s, u, h):
        return {"miou_seen": s, "miou_unseen": u, "hiou": h}
    names = {"plm": "+PLM", "glm+plm": "GLM+PLM", "baseline": "baseline (seen only)"}
    return {
        "seeds": [seed],
        "arms": [{"name": names[a], "arm": a, "glm": "glm" in a, "plm": "plm" in a,
                  "teacher_tokens": False, "runs": [dict(metrics(*v), seed=seed)]}
                 for a, v in arms.items()],
        "teacher": {"name": "teacher", "runs": [metrics(0.4, 0.5, teacher_hiou)]},
        "config": config or {"seed": seed, "syn_loss": {"delta": 13, "tau": 0.07}},
    }


class MergeAblation(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, obj):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    def merge(self, *paths, out="merged.json"):
        out = os.path.join(self.dir.name, out)
        r = subprocess.run([sys.executable, SCRIPT, *paths, "--out", out],
                           capture_output=True, text=True)
        return r, out

    def test_means_and_sample_std(self):
        a = self.write("a.json", run_json(1, {"plm": (0.7, 0.6, 0.5), "baseline": (0.7, 0.1, 0.2)}, 0.40))
        b = self.write("b.json", run_json(2, {"plm": (0.8, 0.8, 0.7)}, 0.44))
        c = self.write("c.json", run_json(2, {"baseline": (0.6, 0.0, 0.0)}, 0.44))
        r, out = self.merge(a, b, c)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as f:
            m = json.load(f)
        self.assertEqual(m["seeds"], [1, 2])
        self.assertEqual([x["arm"] for x in m["arms"]], ["baseline", "plm"])  # --arms order
        plm = m["arms"][1]
        self.assertEqual([x["seed"] for x in plm["runs"]], [1, 2])
        self.assertAlmostEqual(plm["hiou_mean"], 60.0)
        self.assertAlmostEqual(plm["hiou_std"], math.sqrt(2 * 10.0 ** 2))  # sample std of 50, 70
        self.assertAlmostEqual(plm["miou_seen_mean"], 75.0)
        base = m["arms"][0]
        self.assertAlmostEqual(base["miou_unseen_mean"], 5.0)
        # The teacher once per seed although seed 2 came in two files.
        self.assertEqual(len(m["teacher"]["runs"]), 2)
        self.assertAlmostEqual(m["teacher"]["hiou_mean"], 42.0)
        self.assertIn("| +PLM | 75.0 ± 7.1 | 70.0 ± 14.1 | 60.0 ± 14.1 |", r.stdout)

    def test_refuses_a_duplicate_run(self):
        a = self.write("a.json", run_json(1, {"plm": (0.7, 0.6, 0.5)}, 0.4))
        b = self.write("b.json", run_json(1, {"plm": (0.7, 0.6, 0.5)}, 0.4))
        r, out = self.merge(a, b)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("arm plm seed 1 appears twice", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_refuses_different_configurations(self):
        a = self.write("a.json", run_json(1, {"plm": (0.7, 0.6, 0.5)}, 0.4))
        b = self.write("b.json", run_json(2, {"plm": (0.7, 0.6, 0.5)}, 0.4,
                                          {"seed": 2, "syn_loss": {"delta": 10, "tau": 0.07}}))
        r, out = self.merge(a, b)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("syn_loss.delta: 13 vs 10", r.stderr)
        self.assertFalse(os.path.exists(out))

    def test_refuses_a_file_that_is_not_an_ablation(self):
        a = self.write("a.json", {"miou": 0.5})
        r, _ = self.merge(a)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no 'seeds'", r.stderr)


if __name__ == "__main__":
    unittest.main()
