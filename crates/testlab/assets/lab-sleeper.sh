#!/bin/sh
# Second marker process: a busybox script; its process name is the script's name.
exec 0</dev/null
sleep 1000000
