#!/bin/busybox sh
# /init of the built-in cirros-like image: mount the usual filesystems, print
# the banner the harness waits for, then bring the network and an SSH server
# up in the background and keep a login prompt on the console.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
# Terminals for SSH sessions that ask for one.
/bin/busybox mkdir -p /dev/pts
/bin/busybox mount -t devpts devpts /dev/pts
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

# `uname -m` says "mips" for mips and mipsel alike: read the byte order from
# busybox's own ELF header instead (byte 5, EI_DATA: 1 little, 2 big endian).
case "$(dd if=/bin/busybox bs=1 skip=5 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')" in
    1) endian=little ;;
    2) endian=big ;;
    *) endian=unknown ;;
esac

hostname cirros
# The banner comes first: console checks never depend on the network.
echo "ARCHMATRIX-BANNER arch=$(uname -m) release=$(uname -r) endian=$endian"

# Kernel command line: archmatrix.ssh_key=<base64 blob of the run's ed25519 public key>,
# archmatrix.net=off to keep the network down (the harness's planted fault).
ssh_key= net=on
for word in $(cat /proc/cmdline); do
    case "$word" in
        archmatrix.ssh_key=*) ssh_key=${word#archmatrix.ssh_key=} ;;
        archmatrix.net=*) net=${word#archmatrix.net=} ;;
    esac
done

network_and_ssh() {
    # The NIC driver and what it needs, where the kernel has them as modules (in load order).
    if [ -f /lib/modules/archmatrix/order ]; then
        for module in $(cat /lib/modules/archmatrix/order); do
            insmod "/lib/modules/archmatrix/$module" 2>/dev/null
        done
    fi
    [ "$net" = off ] && { echo "ARCHMATRIX-NET off (archmatrix.net=off)"; return; }
    ifconfig lo 127.0.0.1 up
    # The host key is made while DHCP waits on the network: making it may wait for the kernel's entropy.
    # Only an ed25519 key: quick to make on any emulated CPU.
    if [ -n "$ssh_key" ]; then
        mkdir -p /etc/dropbear
        dropbearkey -t ed25519 -f /etc/dropbear/host_key >/dev/null 2>&1 &
        keygen=$!
    fi
    if ! udhcpc -i eth0 -n -q -t 10 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1; then
        echo "ARCHMATRIX-NET failed: no DHCP answer on eth0 ($(ls /sys/class/net | tr '\n' ' '))"
        return
    fi
    echo "ARCHMATRIX-NET up $(ifconfig eth0 | sed -n 's/.*inet addr:\([0-9.]*\).*/\1/p')"
    [ -n "$ssh_key" ] || { echo "ARCHMATRIX-SSH off: no archmatrix.ssh_key on the kernel command line"; return; }
    mkdir -p /root/.ssh
    echo "ssh-ed25519 $ssh_key" > /root/.ssh/authorized_keys
    chmod 700 /root /root/.ssh
    chmod 600 /root/.ssh/authorized_keys
    wait "$keygen"
    # Its public half goes to the console, which the harness trusts, so the key SSH then sees can be checked
    # against it.
    echo "ARCHMATRIX-HOSTKEY $(dropbearkey -y -f /etc/dropbear/host_key 2>/dev/null | grep '^ssh-ed25519' | cut -d' ' -f1,2)"
    # -s -g: no password logins at all; -r: only that host key.
    dropbear -r /etc/dropbear/host_key -s -g -p 22 -P /tmp/dropbear.pid \
        || { echo "ARCHMATRIX-SSH off: dropbear did not start"; return; }
    # dropbear forks before it listens: say so once port 22 (hex 0016) is in state LISTEN (0A), so that the
    # harness's first connection is answered.
    tries=0
    until grep -q ':0016 [0-9A-F:]* 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -lt 500 ] || { echo "ARCHMATRIX-SSH off: dropbear started but is not listening on port 22"; return; }
        usleep 20000
    done
    echo "ARCHMATRIX-SSH listening on 22"
}
network_and_ssh &

# init must never exit (the kernel would panic): login times out, so loop.
while true; do login; done
