# cost-curve.gp: the cost curve's plot, drawn by bench/bench.py:
#
#   gnuplot -e "closed='curve.dat'; open='open.dat'; out='cost-curve.png'; \
#               title='...'; has_open=1" bench/cost-curve.gp
#
# closed: connections, bare rps, bare p99 ms, runbridge rps, runbridge p99 ms
# open:   offered rps, achieved rps, p50 ms, p99 ms, max ms (from the
#         intended send time)
# Three panels: requests/s and p99 against connections (log x, closed loop),
# latency against the offered rate (open loop, runbridge only).

set terminal pngcairo size 1100,1150 font "sans,10"
set output out
set datafile commentschars "#"
set grid
set key outside right top vertical box Left reverse width 1
set multiplot layout (has_open ? 3 : 2),1 title title font "sans,12"

set logscale x 2
set xrange [0.7:740]
set xtics ("1" 1, "8" 8, "32" 32, "128" 128, "512" 512)
set format y "%.0s%c"

set title "closed loop (wrk, distinct bodies): requests/s"
set ylabel "requests/s"
set yrange [0:*]
plot closed using 1:2 with linespoints lw 2 pt 7 title "bare responder", \
     closed using 1:4 with linespoints lw 2 pt 5 title "runbridge"

set title "closed loop: p99 latency"
set ylabel "p99 (ms)"
set xlabel "connections"
set logscale y 10
set yrange [*:*]
set format y "%g"
plot closed using 1:3 with linespoints lw 2 pt 7 title "bare responder", \
     closed using 1:5 with linespoints lw 2 pt 5 title "runbridge"

if (has_open) {
    unset logscale x
    set xrange [0:10500]
    set xtics autofreq
    set format x "%.0s%c"
    set xlabel "offered deliveries/s (fixed schedule)"
    set ylabel "latency from intended send (ms)"
    set title "open loop (bench/openloop, runbridge): latency from the intended send time"
    plot open using 1:3 with linespoints lw 2 pt 7 title "p50", \
         open using 1:4 with linespoints lw 2 pt 5 title "p99", \
         open using 1:5 with linespoints lw 2 pt 9 title "max"
}
unset multiplot
