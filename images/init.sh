#!/bin/busybox sh
# /init of the built-in cirros-like image: mount the usual filesystems, print
# the banner the harness waits for, then keep a login prompt on the console.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
export PATH=/bin

# `uname -m` says "mips" for mips and mipsel alike: read the byte order from
# busybox's own ELF header instead (byte 5, EI_DATA: 1 little, 2 big endian).
case "$(dd if=/bin/busybox bs=1 skip=5 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')" in
    1) endian=little ;;
    2) endian=big ;;
    *) endian=unknown ;;
esac

hostname cirros
echo "EMUV-BANNER arch=$(uname -m) release=$(uname -r) endian=$endian"
# init must never exit (the kernel would panic): login times out, so loop.
while true; do login; done
