#!/usr/bin/env bash
# tests/pkg/check_deb.sh: the Debian package, end to end.  Run as root.
#
# From a fresh clone of this repository's HEAD, without network: build
# serai_<version>_<arch>.deb with dpkg-buildpackage; check what it holds;
# run lintian (an error fails); install it with apt; run the packaged
# binary on loopback ports against the installed example archive; upgrade
# it over an archive the operator changed; remove and purge it, checking
# what goes and what stays.  Any failed check exits non-zero.
#
# It changes the machine it runs on (installs and purges the package,
# makes /srv/serai), so it refuses where serai is installed or its
# directories exist, and removes everything it made when it exits.  CI
# (root, no systemd as PID 1) runs it from .ci/run.
set -euo pipefail

src_repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
archive=/srv/serai/content
# Generous bounds for a loaded two-core machine; a healthy run takes a
# fraction of each.
ready_polls=300     # x 0.1 s: serai ready, or a reload done
stop_polls=100      # x 0.1 s: serai gone after SIGTERM
fetch_timeout=15    # seconds for one Gopher or Gemini fetch
# A uid from systemd's DynamicUser range (61184-65519) that no account
# holds: the packaged service runs as such a transient user.
svc_uid=65100

step() { echo "== check_deb: $*"; }
fail() {
	echo "check_deb: FAIL: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs the package)"
status=$(dpkg-query -W -f='${Status}' serai 2>/dev/null || true)
case "$status" in
"" | "unknown ok not-installed" | "deinstall ok not-installed") ;;
*) fail "serai is already known to dpkg ($status): refusing to touch it" ;;
esac
for d in /srv/serai /var/lib/serai /var/lib/private/serai /etc/serai; do
	if [ -e "$d" ] || [ -L "$d" ]; then
		fail "$d exists: refusing to install over it"
	fi
done
if getent passwd "$svc_uid" >/dev/null; then
	fail "uid $svc_uid belongs to an account; pick another svc_uid"
fi

tmp=$(mktemp -d /tmp/serai-deb.XXXXXX)
chmod 0755 "$tmp"   # apt's _apt user reads the .deb from here
serai_pid=""
made_private=""
[ -e /var/lib/private ] || made_private=yes
cleanup() {
	set +e
	if [ -n "$serai_pid" ]; then
		kill "$serai_pid" 2>/dev/null
		wait "$serai_pid" 2>/dev/null
	fi
	if dpkg-query -W -f='${Status}' serai 2>/dev/null |
	    grep -qv 'not-installed'; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq serai \
		    >/dev/null 2>&1
	fi
	rm -rf /srv/serai /var/lib/serai /var/lib/private/serai /etc/serai \
	    "$tmp"
	[ -z "$made_private" ] || rmdir /var/lib/private
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive

step "tools and build dependencies"
tools="git debhelper dpkg-dev fakeroot lintian curl python3 util-linux"
missing=""
for p in $tools; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

step "fresh clone of $(git -C "$src_repo" rev-parse --short HEAD)"
git clone -q "$src_repo" "$tmp/serai"
if ! (cd "$tmp/serai" && dpkg-checkbuilddeps); then
	apt-get update -qq
	apt-get build-dep -y -qq "$tmp/serai" >/dev/null
fi

meson_version=$(sed -n "s/^  version : '\([^']*\)',\$/\1/p" \
    "$tmp/serai/meson.build")
deb_version=$(dpkg-parsechangelog -l "$tmp/serai/debian/changelog" \
    -S Version)
[ -n "$meson_version" ] || fail "no version found in meson.build"
[ "$deb_version" = "$meson_version" ] ||
    fail "debian/changelog says $deb_version, meson.build $meson_version"
arch=$(dpkg --print-architecture)
deb="$tmp/serai_${meson_version}_${arch}.deb"

step "dpkg-buildpackage -us -uc -b, without network"
# A network namespace of its own has no interface but a down loopback:
# a build step reaching for the network fails here.
netns="unshare --net"
if ! unshare --net true 2>/dev/null; then
	echo "check_deb: unshare --net is not allowed here:" \
	    "building with the network" >&2
	netns=""
fi
if ! (cd "$tmp/serai" && $netns dpkg-buildpackage -us -uc -b) \
    >"$tmp/build.log" 2>&1; then
	tail -60 "$tmp/build.log"
	fail "dpkg-buildpackage failed (log above)"
fi
grep -E '^(Ok|Fail|Skipped): ' "$tmp/build.log" || true
grep -Eq '^Ok: +[1-9]' "$tmp/build.log" ||
    fail "the build ran no unit or fuzz test"
if grep -E '(^|: )warning: ' "$tmp/build.log"; then
	echo "check_deb: note: compiler warnings under Debian's flags (above)"
fi
[ -f "$deb" ] || fail "no $deb; built: $(ls "$tmp"/*.deb)"

step "contents of $(basename "$deb")"
[ "$(dpkg-deb -f "$deb" Package)" = serai ] || fail "Package field"
[ "$(dpkg-deb -f "$deb" Version)" = "$meson_version" ] || fail "Version"
[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "Architecture"
dpkg-deb -c "$deb" >"$tmp/contents"
for f in usr/bin/serai usr/share/man/man8/serai.8.gz \
    usr/share/man/man5/serai.ini.5.gz etc/serai/serai.ini \
    lib/systemd/system/serai.service \
    usr/share/serai/content/news/beijing-declaration.txt \
    usr/share/doc/serai/copyright; do
	grep -q " \./$f\$" "$tmp/contents" || fail "$f is not in the package"
done
dpkg-deb -e "$deb" "$tmp/control"
[ "$(cat "$tmp/control/conffiles")" = /etc/serai/serai.ini ] ||
    fail "conffiles: $(cat "$tmp/control/conffiles")"
dpkg-deb -x "$deb" "$tmp/root"
r="$tmp/root"
diff -r "$tmp/serai/content" "$r/usr/share/serai/content" ||
    fail "the example archive differs from content/"
cmp "$tmp/serai/content/news/beijing-declaration.txt" \
    "$r/usr/share/serai/content/news/beijing-declaration.txt" ||
    fail "the seed article is not byte for byte"
conf="$r/etc/serai/serai.ini"
for line in 'state_dir = /var/lib/serai' 'root = /srv/serai/content' \
    'listen = \*:1965' 'listen = \*:70' 'hostname = localhost'; do
	grep -qx "$line" "$conf" || fail "$conf lacks: $line"
done
# user, group and chroot need root, which the service does not have.
if grep -Eq '^(user|group|chroot) =' "$conf"; then
	fail "$conf sets user, group or chroot"
fi
# The unit is the hardened one of conf/serai.service, nothing less.
sed -e 's,@BINDIR@,/usr/bin,' -e 's,@SYSCONFDIR@,/etc,' \
    "$tmp/serai/conf/serai.service" |
    diff - "$r/lib/systemd/system/serai.service" ||
    fail "the packaged unit differs from conf/serai.service"
[ "$("$r/usr/bin/serai" -V)" = "serai $meson_version" ] ||
    fail "serai -V: $("$r/usr/bin/serai" -V)"
for page in man8/serai.8 man5/serai.ini.5; do
	zcat "$r/usr/share/man/$page.gz" | grep -q '^\.TH' ||
	    fail "$page is not a man page"
done

step "lintian"
rc=0
lintian --fail-on error --display-info "$deb" >"$tmp/lintian.log" 2>&1 ||
    rc=$?
grep -v 'running with root privileges' "$tmp/lintian.log" || true
[ "$rc" -eq 0 ] || fail "lintian reports an error ($rc)"
# --fail-on is lintian's own word; an E: line fails whatever it says.
if grep -q '^E: ' "$tmp/lintian.log"; then
	fail "lintian reports an error"
fi

step "apt install, with root's umask 077"
if [ -d /run/systemd/system ]; then
	echo "systemd is PID 1: the maintainer scripts start the service"
else
	echo "systemd is not PID 1 here: the maintainer scripts must cope;" \
	    "the service is started by hand below"
fi
(umask 077 && apt-get install -y -qq "$deb") >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log"; fail "apt install failed"; }
[ "$(dpkg-query -W -f='${Status}' serai)" = "install ok installed" ] ||
    fail "not installed: $(dpkg-query -W -f='${Status}' serai)"
diff -r /usr/share/serai/content "$archive" ||
    fail "$archive is not the example archive"
bad=$(find /srv/serai \( -type d ! -perm 0755 \) -o \( -type f ! -perm 0644 \) \
    -o ! -user root)
[ -z "$bad" ] || fail "not root's or not readable by all: $bad"
# Enabled as deb-systemd-helper does it, which needs no running systemd.
wants=/etc/systemd/system/multi-user.target.wants/serai.service
[ "$(readlink "$wants")" = /lib/systemd/system/serai.service ] ||
    fail "serai.service is not enabled ($wants)"
systemd-analyze verify /lib/systemd/system/serai.service ||
    fail "systemd-analyze verify"
/usr/bin/serai -n -c /etc/serai/serai.ini ||
    fail "serai -n rejects the packaged configuration"
[ ! -e /var/lib/serai ] ||
    fail "serai -n made /var/lib/serai (systemd must make it)"
if [ -d /run/systemd/system ]; then
	systemctl is-active --quiet serai || fail "serai.service not active"
fi

step "the packaged binary serves the installed archive on loopback"
read -r gem_port gop_port < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
state="$tmp/state"
install -d -o "$svc_uid" -g "$svc_uid" -m 0700 "$state"
sed -e "s,^state_dir = .*,state_dir = $state," \
    -e "s,^listen = \*:1965\$,listen = 127.0.0.1:$gem_port," \
    -e "s,^listen = \*:70\$,listen = 127.0.0.1:$gop_port," \
    /etc/serai/serai.ini >"$tmp/test.ini"
chmod 0644 "$tmp/test.ini"
# As the unit runs it: a uid of its own owning the state directory and
# nothing else, the archive read as any user reads it.
(cd "$state" && exec setpriv --reuid="$svc_uid" --regid="$svc_uid" \
    --clear-groups /usr/bin/serai -c "$tmp/test.ini") >"$tmp/serai.log" 2>&1 &
serai_pid=$!
wait_log() {
	local i
	for ((i = 0; i < ready_polls; i++)); do
		grep -q "$1" "$tmp/serai.log" && return 0
		kill -0 "$serai_pid" 2>/dev/null ||
		    { cat "$tmp/serai.log"; fail "serai exited"; }
		sleep 0.1
	done
	cat "$tmp/serai.log"
	fail "no '$1' in serai's log"
}
wait_log ' ready: '
menu=$(curl -sS --max-time "$fetch_timeout" \
    "gopher://127.0.0.1:$gop_port/1/news/")
grep -q "^0Beijing Declaration.*	/news/beijing-declaration	localhost	$gop_port" \
    <<<"$menu" || { echo "$menu"; fail "Gopher menu of /news/"; }
text=$(curl -sS --max-time "$fetch_timeout" \
    "gopher://127.0.0.1:$gop_port/0/news/beijing-declaration")
grep -q 'Chinese Academy of Sciences' <<<"$text" ||
    { echo "$text"; fail "Gopher text of the seed article"; }
/usr/bin/python3 - "$gem_port" "$fetch_timeout" <<'EOF' ||
import socket, ssl, sys
port, timeout = int(sys.argv[1]), float(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
url = "gemini://localhost:%d/news/beijing-declaration\r\n" % port
with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
    with ctx.wrap_socket(s, server_hostname="localhost") as t:
        t.sendall(url.encode())
        data = b""
        while chunk := t.recv(65536):
            data += chunk
head, _, body = data.partition(b"\r\n")
assert head.startswith(b"20 text/gemini"), head
assert body.startswith(b"# Beijing Declaration: A New Chapter"), body[:80]
EOF
    fail "Gemini page of the seed article"
[ "$(stat -c '%u %a' "$state/localhost.key")" = "$svc_uid 600" ] ||
    fail "the generated key is not the service user's, mode 0600"
# ExecReload is kill -HUP (checked in the unit above): a reload.
kill -HUP "$serai_pid"
wait_log 'reloaded: 1 articles'
kill -TERM "$serai_pid"
for ((i = 0; i < stop_polls; i++)); do
	kill -0 "$serai_pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$serai_pid" 2>/dev/null && fail "serai ignored SIGTERM"
rc=0
wait "$serai_pid" || rc=$?
serai_pid=""
[ "$rc" -eq 0 ] || { cat "$tmp/serai.log"; fail "serai exited $rc"; }

step "upgrade over an archive the operator changed"
echo "description = The operator's words." >>"$archive/news/section.ini"
printf 'Operator note\n\nKept across upgrades.\n' \
    >"$archive/news/operator-note.txt"
rm "$archive/section.ini"
sums() { (cd /srv/serai && find . -type f -exec sha256sum {} + | sort); }
before=$(sums)
dpkg-deb -R "$deb" "$tmp/next"
sed -i "s/^Version: .*/Version: ${meson_version}+check1/" \
    "$tmp/next/DEBIAN/control"
dpkg-deb -b -Zgzip "$tmp/next" "$tmp/next.deb" >/dev/null
apt-get install -y -qq "$tmp/next.deb" >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log"; fail "apt install (upgrade) failed"; }
[ "$(dpkg-query -W -f='${Version}' serai)" = "${meson_version}+check1" ] ||
    fail "not upgraded"
[ "$(sums)" = "$before" ] || fail "the upgrade changed the archive"

step "apt remove"
apt-get remove -y -qq serai >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log"; fail "apt remove failed"; }
[ ! -e /usr/bin/serai ] || fail "/usr/bin/serai left after remove"
[ -f /etc/serai/serai.ini ] || fail "remove took the conffile"
[ "$(sums)" = "$before" ] || fail "remove changed the archive"

step "install after remove, the archive removed: it stays removed"
mv "$archive" "$archive.away"
apt-get install -y -qq "$deb" >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log"; fail "apt install failed"; }
[ ! -e "$archive" ] || fail "the example came back over a removed archive"
mv "$archive.away" "$archive"

step "apt purge: state goes, the archive stays"
# systemd's layout for DynamicUser and StateDirectory=serai, as serai
# fills it: certificate, key, search index (and its WAL files, as a
# kill leaves them; search.cache from an earlier version).
install -d -m 0700 /var/lib/private
install -d -o "$svc_uid" -m 0755 /var/lib/private/serai
for f in localhost.crt localhost.key search.db search.db-wal search.db-shm \
    search.cache; do
	install -o "$svc_uid" -m 0600 /dev/null "/var/lib/private/serai/$f"
done
ln -s private/serai /var/lib/serai
apt-get purge -y -qq serai >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log"; fail "apt purge failed"; }
for gone in /var/lib/serai /var/lib/private/serai /etc/serai \
    /etc/systemd/system/multi-user.target.wants/serai.service; do
	if [ -e "$gone" ] || [ -L "$gone" ]; then
		fail "$gone left after purge"
	fi
done
[ "$(sums)" = "$before" ] || fail "purge changed the archive"

step "install after purge: the kept archive is not replaced"
apt-get install -y -qq "$deb" >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log"; fail "apt install failed"; }
[ "$(sums)" = "$before" ] || fail "a new install replaced the archive"

step "purge keeps what serai did not make in its state directory"
install -d -o "$svc_uid" -m 0755 /var/lib/private/serai/content/news
install -o "$svc_uid" -m 0600 /dev/null /var/lib/private/serai/localhost.key
cp "$archive/news/operator-note.txt" /var/lib/private/serai/content/news/
ln -s private/serai /var/lib/serai
apt-get purge -y -qq serai >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log"; fail "apt purge failed"; }
[ ! -e /var/lib/private/serai/localhost.key ] || fail "purge kept the key"
cmp "$archive/news/operator-note.txt" \
    /var/lib/private/serai/content/news/operator-note.txt ||
    fail "purge took an article from the state directory"
[ -L /var/lib/serai ] || fail "purge took the link to a kept directory"
grep -q 'kept: it holds files serai did not make' "$tmp/apt.log" ||
    fail "purge did not say what it kept"

echo "check_deb: all checks passed ($(basename "$deb"))"
