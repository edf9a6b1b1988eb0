# selftest-panic (not in the matrix): init exits, the kernel panics ("Attempted to kill
# init!"), for rzgate's own check that a panicking guest is an error, not a hang.
plan 1
echo "# rzgate selftest: panicking on purpose"
exec /bin/false
