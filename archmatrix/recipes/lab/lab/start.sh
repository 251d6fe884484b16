#!/bin/sh
# The lab host's start: mounts, its NIC, SSH with the run's key, libvirtd; nothing else that costs time.
# Kernel command line: archmatrix.ssh_key=<base64 ed25519 public key>; archmatrix.lab.seed=1 at image build time:
# let libvirtd probe every emulator into its capabilities cache, then power off (the image keeps the cache).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mkdir -p /dev/pts /dev/shm
/bin/busybox mount -t devpts devpts /dev/pts
/bin/busybox mount -t tmpfs tmpfs /run
/bin/busybox mount -t tmpfs tmpfs /dev/shm
/bin/busybox mount -t tmpfs tmpfs /tmp
/bin/busybox mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
/bin/busybox mkdir -p /usr/local/bin
/bin/busybox --install -s /usr/local/bin
hostname lab
up() { cut -d' ' -f1 /proc/uptime; }
ssh_key= seed=
for word in $(cat /proc/cmdline); do
    case "$word" in
        archmatrix.ssh_key=*) ssh_key=${word#archmatrix.ssh_key=} ;;
        archmatrix.lab.seed=1) seed=1 ;;
    esac
done
for module in $(cat /lib/modules/lab/order); do insmod "/lib/modules/lab/$module" 2>/dev/null; done
if [ -c /dev/kvm ]; then kvm=present; else kvm=absent; fi
echo "ARCHMATRIX-LAB kernel-up uptime=$(up) kvm=$kvm"
ifconfig lo 127.0.0.1 up
mkdir -p /run/lock /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/lib/libvirt/images /var/cache/libvirt /run/libvirt
virtlogd -d
libvirtd -d
if [ -n "$ssh_key" ]; then
    (
        if ! udhcpc -i eth0 -n -q -t 10 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1; then
            echo "ARCHMATRIX-LAB failed: no DHCP answer on eth0"
            exit 1
        fi
        mkdir -p /root/.ssh /etc/dropbear
        echo "ssh-ed25519 $ssh_key" > /root/.ssh/authorized_keys
        chmod 700 /root /root/.ssh
        chmod 600 /root/.ssh/authorized_keys
        dropbearkey -t ed25519 -f /etc/dropbear/host_key >/dev/null 2>&1
        echo "ARCHMATRIX-HOSTKEY $(dropbearkey -y -f /etc/dropbear/host_key 2>/dev/null | grep '^ssh-ed25519' | cut -d' ' -f1,2)"
        # As every guest of the harness says it: the harness connects once its server listens.
        dropbear -r /etc/dropbear/host_key -s -g -p 22 -P /run/dropbear.pid && echo "ARCHMATRIX-SSH listening on 22"
    ) &
fi
tries=0
until answer=$(virsh -c qemu:///system capabilities 2>&1 >/dev/null); do
    tries=$((tries + 1))
    if [ $tries -gt 600 ]; then
        echo "ARCHMATRIX-LAB failed: libvirtd does not answer: $answer"
        exit 1
    fi
    sleep 0.2
done
echo "ARCHMATRIX-LAB libvirt-up uptime=$(up)"
if [ -n "$seed" ]; then
    ls /var/cache/libvirt/qemu/capabilities/
    kill "$(cat /run/libvirtd.pid)" "$(cat /run/virtlogd.pid)" 2>/dev/null
    sleep 1
    sync
    mount -o remount,ro /
    echo "ARCHMATRIX-LAB seeded"
    sleep 1  # the line must reach the console stream before the domain is gone
    poweroff -f
fi
