/* /init of the built-in image for arches Debian builds no busybox-static for.
 *
 * It does what init.sh does, in C, linked static with Debian's cross C
 * library: mount the usual filesystems, print the banner the harness waits
 * for, then keep a login prompt on the console. The byte order is read from
 * this program's own ELF header, as init.sh reads busybox's.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <unistd.h>

static const char *byte_order_of(const char *path)
{
    unsigned char header[6];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return "unknown";
    ssize_t got = read(fd, header, sizeof header);
    close(fd);
    if (got != sizeof header || memcmp(header, "\177ELF", 4) != 0)
        return "unknown";
    return header[5] == 1 ? "little" : header[5] == 2 ? "big" : "unknown"; /* EI_DATA */
}

int main(void)
{
    struct utsname name;
    char line[256];

    mount("proc", "/proc", "proc", 0, NULL);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    sethostname("cirros", 6);
    if (uname(&name) != 0)
        strcpy(name.machine, "unknown");
    printf("ARCHMATRIX-BANNER arch=%s release=%s endian=%s\n", name.machine, name.release, byte_order_of("/init"));
    /* init must never exit (the kernel would panic). No accounts: any name is refused. */
    for (;;) {
        printf("cirros login: ");
        fflush(stdout);
        if (fgets(line, sizeof line, stdin) == NULL) {
            sleep(60);
            continue;
        }
        printf("Login incorrect\n");
    }
}
