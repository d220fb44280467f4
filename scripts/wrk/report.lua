-- wrk's end-of-run hook for scripts/wrk/run.sh: prints one line
--   DISPATCHLAB_WRK_JSON {...}
-- with what wrk measured (duration, requests, bytes, errors by kind, latency
-- mean/stdev/min/max in microseconds) and the latency percentile spectrum as
-- HdrHistogram prints it (percentiles halving the distance to 100 %), so that
-- run.sh can write a row of the result schema and a .hgrm file.
-- Usage: wrk -s scripts/wrk/report.lua ... URL

local function spectrum(latency)
  local points = {}
  local remaining = 1.0
  -- 0, 50, 75, 87.5, ... in five steps per halving, down to 1 in 10^6.
  while remaining > 1e-6 do
    for step = 0, 4 do
      local percentile = 100 * (1 - remaining * (1 - step / 10))
      points[#points + 1] = string.format("[%.9f, %d]", percentile, latency:percentile(percentile))
    end
    remaining = remaining / 2
  end
  points[#points + 1] = string.format("[100, %d]", latency.max)
  return table.concat(points, ", ")
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'DISPATCHLAB_WRK_JSON {"duration_us": %d, "requests": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"latency_us": {"min": %d, "max": %d, "mean": %.3f, "stdev": %.3f, '
      .. '"p50": %d, "p90": %d, "p99": %d, "p999": %d}, "spectrum": [%s]}\n',
    summary.duration, summary.requests, summary.bytes,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency.min, latency.max, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    spectrum(latency)))
end
