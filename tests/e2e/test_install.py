"""meson install, the systemd unit and the documentation of every key."""

import json
import os
import re
import subprocess

from conftest import RUN_TIMEOUT, SERAI_BIN, SOURCE_ROOT, require_tool

BUILD_DIR = SERAI_BIN.parent


def config_keys():
    """(section, key) for every key config.c takes."""
    text = (SOURCE_ROOT / "src" / "config.c").read_text()
    keys = re.findall(r'\{"(\w+)", "(\w+)", K_\w+', text)
    assert len(keys) >= 20, keys
    return keys


def installed(tmp_path):
    dest = tmp_path / "dest"
    proc = subprocess.run(["meson", "install", "-C", str(BUILD_DIR),
                           "--destdir", str(dest), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    prefix = subprocess.run(
        ["meson", "introspect", "--buildoptions", str(BUILD_DIR)],
        capture_output=True, text=True, timeout=60).stdout
    m = re.search(r'"name": "prefix", "value": "([^"]+)"', prefix)
    assert m, "no prefix in meson introspect"
    return dest, dest / m.group(1).lstrip("/")


def test_install_puts_everything_in_place(tmp_path):
    dest, root = installed(tmp_path)
    for rel in ["bin/serai", "share/man/man8/serai.8",
                "share/man/man5/serai.ini.5", "etc/serai/serai.ini",
                "lib/systemd/system/serai.service"]:
        assert (root / rel).is_file(), rel
    assert os.access(root / "bin" / "serai", os.X_OK)
    proc = subprocess.run([str(root / "bin" / "serai"), "-V"],
                          capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    assert proc.stdout.startswith("serai ")


def test_systemd_unit_passes_verify(tmp_path):
    require_tool("systemd-analyze")
    dest, root = installed(tmp_path)
    unit = (root / "lib/systemd/system/serai.service").read_text()
    for hardening in ["NoNewPrivileges=yes", "ProtectSystem=strict",
                      "ProtectHome=yes", "PrivateTmp=yes",
                      "StateDirectory=serai",
                      "AmbientCapabilities=CAP_NET_BIND_SERVICE"]:
        assert hardening in unit, hardening
    # verify wants the binary at its ExecStart path: point it at ours.
    m = re.search(r"^ExecStart=(\S+)", unit, re.M)
    assert m and m.group(1).endswith("/bin/serai"), unit
    check = tmp_path / "serai.service"
    check.write_text(unit.replace(m.group(1),
                                  str(root / "bin" / "serai")))
    env = dict(os.environ, MANPATH=str(root / "share" / "man"))
    proc = subprocess.run(["systemd-analyze", "verify", str(check)],
                          capture_output=True, text=True, env=env,
                          timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


def test_every_key_is_documented():
    man = (SOURCE_ROOT / "docs" / "serai.ini.5.scd").read_text()
    sample = (SOURCE_ROOT / "conf" / "serai.ini").read_text()
    readme = (SOURCE_ROOT / "README.md").read_text()
    for section, key in config_keys():
        # The man page: under its [section] heading ("[host NAME]").
        part = re.split(r"# \[%s(?: NAME)?\]" % section, man, maxsplit=1)
        assert len(part) == 2, section
        body = part[1].split("\n# ", 1)[0]
        assert re.search(r"\*%s\* =" % key, body), (section, key)
        assert re.search(r"^;?%s = " % key, sample, re.M), (section, key)
        assert "`%s`" % key in readme, (section, key)


def test_man_pages_render(tmp_path):
    require_tool("man")
    dest, root = installed(tmp_path)
    for page in ["share/man/man8/serai.8", "share/man/man5/serai.ini.5"]:
        proc = subprocess.run(["man", "-l", str(root / page)],
                              capture_output=True, text=True,
                              env=dict(os.environ, MANPAGER="cat",
                                       PAGER="cat", MANWIDTH="80"),
                              timeout=RUN_TIMEOUT)
        assert proc.returncode == 0, proc.stderr
        assert "SEE ALSO" in proc.stdout


def test_debian_version_is_meson_version():
    # The package's version is meson.build's: a release bumps both, with
    # a debian/changelog entry, or the .deb names the wrong version.
    info = subprocess.run(["meson", "introspect", "--projectinfo",
                           str(BUILD_DIR)], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    assert info.returncode == 0, info.stderr
    version = json.loads(info.stdout)["version"]
    first = (SOURCE_ROOT / "debian" / "changelog").read_text().split("\n")[0]
    m = re.match(r"serai \(([^)\s]+)\) \S+; urgency=\w+$", first)
    assert m, first
    assert m.group(1) == version, (first, version)
    proc = subprocess.run([str(SERAI_BIN), "-V"], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)
    assert proc.stdout == "serai %s\n" % version, proc.stdout
