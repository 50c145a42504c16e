// Package configs_test checks what the Debian package ships: it builds
// the amd64 package with configs/deb/mkdeb.sh, installs it into a scratch
// root with dpkg (maintainer scripts run against that root), and checks
// the files, the user, the key and that the packaged configs validate
// with the packaged lockerctl.
package configs_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDebianPackage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test installs the package into a scratch root (dpkg --root, useradd --root, chroot): run it as root, as `make test` in CI does")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "useradd", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: `make test` installs it (Debian packages dpkg, passwd, coreutils)", tool)
		}
	}
	dist := t.TempDir()
	deb := strings.TrimSpace(run(t, "sh", "deb/mkdeb.sh", "amd64", "0.1.0+test", dist))

	listing := run(t, "dpkg-deb", "--contents", deb)
	for _, f := range []string{"./usr/bin/lockerd", "./usr/bin/lockerctl", "./lib/systemd/system/lockerd.service",
		"./usr/share/doc/lockerd/examples/pi-16door.yaml", "./usr/share/doc/lockerd/examples/pi-48door-lockboard.yaml", "./usr/share/doc/lockerd/install.md"} {
		if !strings.Contains(listing, f) {
			t.Errorf("package lacks %s:\n%s", f, listing)
		}
	}
	// A new cabinet is blank until it is provisioned: no live config.
	if strings.Contains(listing, "./etc/lockerd/lockerd.yaml") {
		t.Errorf("the package installs a configuration: a new cabinet would not be blank (unprovisioned)")
	}
	if cf := run(t, "dpkg-deb", "--field", deb, "Package", "Architecture"); !strings.Contains(cf, "lockerd") || !strings.Contains(cf, "amd64") {
		t.Errorf("control: %s", cf)
	}

	// A scratch root: an empty dpkg database and the base accounts.
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for name, text := range map[string]string{"var/lib/dpkg/status": "", "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group": "root:x:0:\n", "etc/shadow": "root:*::0:99999:7:::\n", "etc/gshadow": "root:*::\n"} {
		os.WriteFile(filepath.Join(root, name), []byte(text), 0o644)
	}
	dpkg := func(args ...string) string {
		return run(t, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends", "--log=/dev/null"}, args...)...)
	}
	dpkg("-i", deb)

	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	if !strings.Contains(string(passwd), "lockerd:x:") || !strings.Contains(string(passwd), ":/var/lib/lockerd:/usr/sbin/nologin") {
		t.Errorf("no lockerd system user:\n%s", passwd)
	}
	for _, g := range []string{"gpio", "i2c", "dialout", "input"} {
		if !strings.Contains(string(group), "\n"+g+":") || !strings.Contains(strings.SplitN(strings.SplitN(string(group), "\n"+g+":", 2)[1], "\n", 2)[0], "lockerd") {
			t.Errorf("lockerd not in group %s:\n%s", g, group)
		}
	}
	key, err := os.Stat(filepath.Join(root, "etc/lockerd/pickup.key"))
	if err != nil || key.Mode().Perm() != 0o640 {
		t.Errorf("pickup key: %v %v", key, err)
	}
	if st, err := os.Stat(filepath.Join(root, "var/lib/lockerd")); err != nil || st.Mode().Perm() != 0o750 {
		t.Errorf("state directory: %v %v", st, err)
	}
	// lockerd writes its configuration (provisioned, or pushed): the
	// directory is its group's.
	gidOf := func(name string) string {
		for _, line := range strings.Split(string(group), "\n") {
			if f := strings.Split(line, ":"); len(f) > 2 && f[0] == name {
				return f[2]
			}
		}
		return ""
	}
	if st, err := os.Stat(filepath.Join(root, "etc/lockerd")); err != nil || st.Mode().Perm() != 0o770 || fmt.Sprint(st.Sys().(*syscall.Stat_t).Gid) != gidOf("lockerd") {
		t.Errorf("configuration directory: %v %v (want 0770, group lockerd)", st, err)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/lockerd.service"))
	for _, want := range []string{"ExecStart=/usr/bin/lockerd -config /etc/lockerd/lockerd.yaml", "Type=notify", "User=lockerd", "StateDirectory=lockerd", "ReadWritePaths=/etc/lockerd"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}

	// The packaged lockerctl accepts the packaged configs, inside the root.
	for _, cfg := range []string{"/usr/share/doc/lockerd/examples/pi-16door.yaml", "/usr/share/doc/lockerd/examples/pi-48door-lockboard.yaml"} {
		if out := run(t, "chroot", root, "/usr/bin/lockerctl", "validate", cfg); !strings.Contains(out, ": ok (") {
			t.Errorf("validate %s: %s", cfg, out)
		}
	}
	if out := run(t, "chroot", root, "/usr/bin/lockerd", "-version"); !strings.Contains(out, "0.1.0+test") {
		t.Errorf("lockerd -version: %s", out)
	}

	dpkg("--purge", "lockerd")
	for _, gone := range []string{"usr/bin/lockerd", "etc/lockerd/lockerd.yaml", "etc/lockerd/pickup.key", "var/lib/lockerd"} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s left after purge", gone)
		}
	}
}
