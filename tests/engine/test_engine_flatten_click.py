"""`-h config` / `-o`: Click's flattened form, byte for byte as C++ Click 2.1 prints it for
the same configuration (requirements, a blank line, the top-level elements then what the
compounds expanded to, a blank line, the connections in chains)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFIG = """require(compact_config);
elementclass A { $x | input -> Print($x) -> output || $x, $y | input -> Print("$x$y") -> output };
elementclass A { $x, $y, $z | input -> Print(three) -> output || ... };
elementclass B { $a, __REST__ $r | input -> Print(${a[0]}) -> output };
f :: FromIPSummaryDump(t.ipsum, STOP true);
f -> A(foo) -> A(a, b) -> A(1,2,3) -> B(bee, c, d) -> s :: Script(TYPE PACKET, return 0)
  -> IPFilter(allow dst net 2.0/16) -> Print(ok) -> Discard;
"""

# click t.click -h config (C++ Click from kohler/click), stderr then stdout.
CLICK = """foo:   40 | 45000028 00000000 64060000 01000001 02000002 00000000
ab:   40 | 45000028 00000000 64060000 01000001 02000002 00000000
three:   40 | 45000028 00000000 64060000 01000001 02000002 00000000
bee:   40 | 45000028 00000000 64060000 01000001 02000002 00000000
ok:   40 | 45000028 00000000 64060000 01000001 02000002 00000000
require(compact_config);

f :: FromIPSummaryDump(t.ipsum, STOP true);
s :: Script(TYPE PACKET, return 0);
IPFilter@7 :: IPFilter(allow dst net 2.0/16);
Print@8 :: Print(ok);
Discard@9 :: Discard;
A@2/Print@1 :: Print(foo);
A@3/Print@1 :: Print("ab");
A@4/Print@1 :: Print(three);
B@5/Print@1 :: Print(bee);

f -> A@2/Print@1
    -> A@3/Print@1
    -> A@4/Print@1
    -> B@5/Print@1
    -> s
    -> IPFilter@7
    -> Print@8
    -> Discard@9;
"""


def test_config_handler_prints_clicks_flattened_form(tmp_path: Path) -> None:
    (tmp_path / "t.click").write_text(CONFIG)
    (tmp_path / "t.ipsum").write_text("!data ip_src ip_dst\n1.0.0.1 2.0.0.2\n")
    res = subprocess.run([sys.executable, "-m", "routebricks.cli", "run", "t.click", "-h",
                          "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stderr + res.stdout == CLICK


def test_requirements_unparse_as_click() -> None:
    from routebricks.engine.graph import Graph, Requirement

    g = Graph(requirements=[Requirement("package", "my pkg"), Requirement("package", "ip6"),
                            Requirement("feature", "compact_config")])
    assert g.unparse() == 'require(package "my pkg", package ip6, compact_config);\n\n'

