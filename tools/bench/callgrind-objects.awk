# callgrind_annotate --threshold=100 output -> "object<TAB>Ir" (self cost), dropping the frames
# that were active at a mid-run dump (callgrind lists each with the same inclusive cost; two
# distinct functions with the very same count above 1% of the total do not occur in practice).
/PROGRAM TOTALS/ { t = $1; gsub(",", "", t); total = t + 0; next }
/^ *[0-9,]+ +\( *[0-9.]+%\) / {
	ir = $1; gsub(",", "", ir); ir += 0
	obj = "other"
	if (match($0, /\[[^]]*\]$/)) { obj = substr($0, RSTART + 1, RLENGTH - 2); sub(".*/", "", obj) }
	n++; irs[n] = ir; objs[n] = obj; cnt[ir]++
}
END {
	for (i = 1; i <= n; i++) {
		if (cnt[irs[i]] >= 2 && irs[i] > total * 0.01) continue
		s[objs[i]] += irs[i]; sum += irs[i]
	}
	for (o in s) printf "%s\t%.0f\n", o, s[o]
	printf "TOTAL\t%.0f\nCHECKSUM\t%.0f\n", total, sum
}
