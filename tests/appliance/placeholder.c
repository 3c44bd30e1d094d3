/*
 * placeholder: stands in for the appliance program (appliance/main.c)
 * while it does not exist, so that `make iso` and `make pxe` build a
 * bootable image.  Run by /init as PID 1: it says what it is and replaces
 * itself with a shell on the console; without a shell it powers off (PID 1
 * must never exit).
 */
#include <stdio.h>
#include <sys/reboot.h>
#include <unistd.h>

int
main(void)
{
    printf("vmconvert-appliance: this image was built without the appliance "
           "program (placeholder); starting a shell\n");
    fflush(stdout);
    execl("/bin/sh", "sh", "-c", "setsid cttyhack sh; poweroff -f",
          (char *)NULL);
    perror("vmconvert-appliance: /bin/sh");
    sync();
    reboot(RB_POWER_OFF);
    return 1;
}
