#!/bin/busybox sh
# memlens test-lab /init (PID 1 of the guest). Kept minimal and fork-free once the
# marker runs: the marker takes the in-guest ground truth itself.
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
# Only emergencies on the console from now on: our records must not interleave with printk.
echo "1 4 1 7" > /proc/sys/kernel/printk
echo 0 > /proc/sys/kernel/kptr_restrict
echo "===TESTLAB-INIT==="
for m in /lib/modules/testlab/*.ko; do
    [ -e "$m" ] || continue
    insmod "$m" || echo "testlab: insmod $m failed"
done
/bin/lab-sleeper MEMLENS-SLEEPER-ARG &
sleep 1 # let the sleeper start its child before the marker takes its snapshot
MEMLENS_ENV_ALPHA=MEMLENS-ENV-ALPHA-5a17 MEMLENS_ENV_BETA=MEMLENS-ENV-BETA-99c3 \
    /bin/memlens-marker MEMLENS-ARGV-ONE-b0d1 MEMLENS-ARGV-TWO-7e55 </dev/null &
wait
echo "===TESTLAB-INIT-EXITING==="
while true; do sleep 3600; done
