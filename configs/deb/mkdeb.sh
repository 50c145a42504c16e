#!/bin/sh
# Builds the lockerd Debian package for one architecture:
#   configs/deb/mkdeb.sh ARCH VERSION OUTDIR      (ARCH: arm64, armhf, amd64)
# with dpkg-deb: static lockerd and lockerctl, the systemd unit, example
# configs under /usr/share/doc/lockerd/examples, and maintainer scripts
# that create the lockerd user and a pickup-key placeholder. No
# /etc/lockerd/lockerd.yaml: a new cabinet is blank until it is
# provisioned (lockerctl provision, or its QR code scanned: docs/fleet.md)
# or a technician writes one from an example (docs/install.md). Packages
# before 0.17 had it as a conffile; dpkg keeps an installed one.
set -eu
arch=$1 version=$2 out=$3
case $arch in
  amd64) goarch=amd64 goarm= ;;
  arm64) goarch=arm64 goarm= ;;
  armhf) goarch=arm goarm=6 ;;  # Raspberry Pi OS 32-bit "armhf" is ARMv6 hard-float: runs on every Pi, Zero and 1 included
  *) echo "mkdeb: unknown architecture $arch (arm64, armhf, amd64)" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/configs/deb"
stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" "$stage/etc/lockerd" \
  "$stage/usr/share/doc/lockerd/examples"
(cd "$top" && CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm go build -trimpath \
  -ldflags "-s -w -X main.version=$version" -o "$stage/usr/bin/" ./cmd/lockerd ./cmd/lockerctl)
install -m 0644 "$top/configs/lockerd.service" "$stage/lib/systemd/system/lockerd.service"
install -m 0644 "$top/configs/pi-16door.yaml" "$top/configs/pi-48door-lockboard.yaml" "$stage/usr/share/doc/lockerd/examples/"
install -m 0644 "$top/docs/install.md" "$stage/usr/share/doc/lockerd/install.md"
for s in postinst prerm postrm; do install -m 0755 "$here/$s" "$stage/DEBIAN/$s"; done
size=$(du -sk "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: lockerd
Version: $version
Architecture: $arch
Maintainer: lockerd developers <lockerd@example.org>
Installed-Size: $size
Depends: adduser | passwd
Section: misc
Priority: optional
Homepage: https://github.com/lockerd/lockerd
Description: smart book locker daemon for library pickup lockers
 lockerd drives a pickup locker's door locks and sensors (GPIO, I2C
 expanders or RS-485 lock boards) and barcode scanners, checks pickup
 codes against a local order store so the locker works offline, and
 syncs orders and events with the central library over MQTT.
 lockerctl configures, self-tests and labels the cabinet.
CONTROL
mkdir -p "$out"
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$out/lockerd_${version}_${arch}.deb" >/dev/null
echo "$out/lockerd_${version}_${arch}.deb"
