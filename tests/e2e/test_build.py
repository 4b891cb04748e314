"""The library as others build on it: trailwatch.pc and the version macros, and the repository
checks (scripts/check-layering, scripts/check-exports) failing when they should."""
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import unittest

from twtest import ROOT

BUILD = os.path.join(ROOT, "build")


def sh(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)


class TestLibrary(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(os.path.join(BUILD, "libtrailwatch.a")):
            self.skipTest("build/libtrailwatch.a not built")
        self.dir = tempfile.mkdtemp(prefix="tw-build-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def header_version(self):
        text = open(os.path.join(ROOT, "include", "trailwatch", "trailwatch.h")).read()
        return tuple(int(re.search(r"#define TW_VERSION_%s (\d+)" % k, text).group(1))
                     for k in ("MAJOR", "MINOR", "PATCH"))

    def test_pkg_config_builds_a_program_against_the_library(self):
        env = dict(os.environ, PKG_CONFIG_PATH=BUILD)
        p = sh(["pkg-config", "--modversion", "trailwatch"], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "%d.%d.%d" % self.header_version())
        # where it is installed, prefix/include and prefix/lib; here the tree and build/
        where = ["--define-variable=prefix=" + ROOT, "--define-variable=libdir=" + BUILD]
        flags = sh(["pkg-config", "--cflags", "--libs"] + where + ["trailwatch"], env=env)
        self.assertEqual(flags.returncode, 0, flags.stderr)
        self.assertIn("-ltrailwatch", flags.stdout)
        src = os.path.join(self.dir, "prog.c")
        with open(src, "w") as f:
            f.write(textwrap.dedent("""\
                #include <stdio.h>
                #include <string.h>
                #include <trailwatch/trailwatch.h>
                #if TW_VERSION_HEX != ((TW_VERSION_MAJOR << 16) | (TW_VERSION_MINOR << 8) | TW_VERSION_PATCH)
                #error "TW_VERSION_HEX"
                #endif
                int main(void)
                {
                    char v[32];
                    snprintf(v, sizeof v, "%d.%d.%d", TW_VERSION_MAJOR, TW_VERSION_MINOR, TW_VERSION_PATCH);
                    tw_pattern *p = NULL;
                    tw_error err;
                    const char *pat = "{\\"source\\":[\\"aws.ec2\\"]}";
                    int ok = tw_pattern_parse(pat, strlen(pat), NULL, &p, &err) == TW_OK;
                    tw_pattern_free(p);
                    printf("%s %s %06x %d %s\\n", TW_VERSION, v, TW_VERSION_HEX, ok, tw_strerror(TW_ENOMEM));
                    return strcmp(v, TW_VERSION) != 0;
                }
                """))
        exe = os.path.join(self.dir, "prog")
        cc = sh(["cc", "-std=c17", "-Wall", "-Werror", "-o", exe, src] + flags.stdout.split())
        self.assertEqual(cc.returncode, 0, cc.stderr)
        run = sh([exe])
        self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
        ma, mi, pa = self.header_version()
        self.assertEqual(run.stdout.split(),
                         ["%d.%d.%d" % (ma, mi, pa), "%d.%d.%d" % (ma, mi, pa), "%06x" % (ma << 16 | mi << 8 | pa),
                          "1", "out", "of", "memory"])

    def test_check_exports_names_what_is_neither_public_nor_internal(self):
        src = os.path.join(self.dir, "x.c")
        with open(src, "w") as f:
            f.write("int tw__fine(void);\nint tw__fine(void) { return 1; }\n"
                    "int tw_strerror_x(void);\nint tw_strerror_x(void) { return 2; }\n"
                    "int helper(void);\nint helper(void) { return 3; }\n"
                    "static int hidden(void) { return 4; }\nint tw_strerror(void) { return hidden(); }\n")
        obj, lib = os.path.join(self.dir, "x.o"), os.path.join(self.dir, "libx.a")
        self.assertEqual(sh(["cc", "-c", "-o", obj, src]).returncode, 0)
        self.assertEqual(sh(["ar", "rcs", lib, obj]).returncode, 0)
        p = sh([os.path.join(ROOT, "scripts", "check-exports"), lib])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("exported but not public (name it tw__...): tw_strerror_x", p.stdout)
        self.assertIn("exported but not public (name it tw__...): helper", p.stdout)
        self.assertNotIn(": tw__fine", p.stdout)
        self.assertNotIn(": tw_strerror\n", p.stdout)
        self.assertIn("2 neither public nor tw__", p.stdout)


class TestLayering(unittest.TestCase):
    """scripts/check-layering against a small tree of its own."""

    TABLE = """\
        # x

        ## Modules

        | folder | what | depends on |
        |---|---|---|
        | `include/trailwatch/` | api | - |
        | `src/low/` | bottom | - |
        | `src/mid/` | middle | low, OpenSSL |
        | `src/top/` | top | low, mid/one |

        ## Next
        """

    def tree(self, table=TABLE, files=None):
        d = tempfile.mkdtemp(prefix="tw-layering-")
        self.addCleanup(shutil.rmtree, d, True)
        os.makedirs(os.path.join(d, "docs"))
        with open(os.path.join(d, "docs", "ARCHITECTURE.md"), "w") as f:
            f.write(textwrap.dedent(table))
        base = {"src/low/low.h": '#include "trailwatch/error.h"\n',
                "src/mid/mid.c": '#include "low/low.h"\n#include "mid/mid.h"\n',
                "src/mid/mid.h": "",
                "src/top/top.c": '#include "low/low.h"\n#include "mid/one.h"\n'}
        base.update(files or {})
        for path, text in base.items():
            if text is None:
                continue
            os.makedirs(os.path.dirname(os.path.join(d, path)), exist_ok=True)
            with open(os.path.join(d, path), "w") as f:
                f.write(text)
        return sh([os.path.join(ROOT, "scripts", "check-layering"), d])

    def test_a_tree_that_follows_its_table_passes(self):
        p = self.tree()
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("check-layering: 3 modules, ok", p.stdout)

    def test_an_include_against_the_table_fails(self):
        p = self.tree(files={"src/low/low.c": '#include "mid/mid.h"\n'})           # points up
        self.assertEqual(p.returncode, 1)
        self.assertIn("src/low/low.c:1: includes mid/, but low does not depend on mid", p.stdout)
        p = self.tree(files={"src/top/top.c": '#include "low/low.h"\n#include "mid/mid.h"\n'})  # not that header
        self.assertEqual(p.returncode, 1)
        self.assertIn("src/top/top.c:2: includes mid/, but top does not depend on mid", p.stdout)

    def test_a_table_that_points_up_or_is_stale_fails(self):
        table = self.TABLE.replace("| bottom | - |", "| bottom | top |")
        p = self.tree(table=table, files={"src/low/low.c": '#include "top/top.h"\n'})
        self.assertEqual(p.returncode, 1)
        self.assertIn("low depends on top, which the table lists below it", p.stdout)
        p = self.tree(files={"src/mid/mid.c": '#include "mid/mid.h"\n'})            # low no longer used
        self.assertEqual(p.returncode, 1)
        self.assertIn("mid is said to depend on low, but no file of src/mid/ includes it", p.stdout)
        p = self.tree(files={"src/new/new.c": "int x;\n"})
        self.assertEqual(p.returncode, 1)
        self.assertIn("src/new/ has no row in the module table", p.stdout)


if __name__ == "__main__":
    unittest.main()
