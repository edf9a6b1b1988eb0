# selftest-hang (not in the matrix): a guest that never finishes, for rzgate's own check
# that a hung cell ends at its timeout as an error with the console tail.
plan 1
echo "# rzgate selftest: hanging on purpose"
while :; do :; done
