-- The global value sshd uses for each keyword, per bundle: the first it reads (sshd_config(5):
-- "the first obtained value will be used"). Reading order: the main sshd_config top down, and at
-- each of its Include lines the drop-ins whose path matches that line's pattern (a relative
-- pattern is under /etc/ssh; one pattern a line is read), in path order. Lines from a file's
-- first Match on are conditional, not global, and are left out; a drop-in no Include names is
-- not read by sshd and is left out too. A keyword that appears nowhere has no row: the rules
-- say which default they assume.
WITH sshd AS (
    SELECT * FROM config_entries WHERE file_kind IN ('sshd_config', 'sshd_config.d')
), first_match AS (
    SELECT bundle_id, member_path, min(line_no) AS match_line
    FROM sshd WHERE key = 'match' GROUP BY bundle_id, member_path
), includes AS (
    SELECT bundle_id, line_no AS include_line,
           CASE WHEN value LIKE '/%' THEN value ELSE '/etc/ssh/' || value END AS pattern
    FROM sshd WHERE file_kind = 'sshd_config' AND key = 'include'
), placed AS (
    SELECT s.*, s.line_no::DOUBLE AS pos
    FROM sshd s WHERE s.file_kind = 'sshd_config'
    UNION ALL
    SELECT s.*, i.include_line + 0.5 AS pos
    FROM sshd s JOIN includes i ON s.bundle_id = i.bundle_id AND s.member_path GLOB i.pattern
    WHERE s.file_kind = 'sshd_config.d'
)
SELECT p.bundle_id, p.host, p.member_path, p.line_no, p.key, p.value, p.raw
FROM placed p LEFT JOIN first_match m ON p.bundle_id = m.bundle_id
     AND p.member_path = m.member_path
WHERE p.key NOT IN ('include', 'match') AND p.line_no < coalesce(m.match_line, 9223372036854775807)
QUALIFY row_number() OVER (PARTITION BY p.bundle_id, p.key
                           ORDER BY p.pos, p.member_path, p.line_no) = 1
