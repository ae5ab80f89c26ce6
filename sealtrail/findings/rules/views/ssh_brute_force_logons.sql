-- Successful SSH logons from an address with ten or more failed SSH logons on the same host in
-- the hour before (sshd lines of auth logs and the journal): the logons a brute force won.
-- Used by sealtrail-ssh-brute-force-success and sealtrail-privilege-after-brute-force.
WITH sshd AS (
    SELECT event_uid, ts, host, "user", src_ip, event_type FROM events
    WHERE event_type IN ('logon_failure', 'logon_success') AND process = 'sshd'
      AND src_ip IS NOT NULL
)
SELECT s.event_uid, s.ts, s.host, s."user", s.src_ip
FROM sshd s JOIN sshd f ON f.event_type = 'logon_failure'
     AND f.host IS NOT DISTINCT FROM s.host AND f.src_ip = s.src_ip
     AND f.ts BETWEEN s.ts - INTERVAL 1 HOUR AND s.ts
WHERE s.event_type = 'logon_success'
GROUP BY ALL HAVING count(*) >= 10
