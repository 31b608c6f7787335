-- done(): the one line the benchmark reads from wrk's output ("BENCH " and a JSON object).
-- summary.errors.status counts the responses with a status of 400 or more.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "seconds": %.6f, "errors": %d, "status_errors": %d, "p50_ms": %.3f, "p99_ms": %.3f}\n',
      summary.requests, summary.duration / 1e6,
      e.connect + e.read + e.write + e.status + e.timeout, e.status,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
