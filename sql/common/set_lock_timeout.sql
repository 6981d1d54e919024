-- Maintenance DDL queues behind long queries and then blocks everyone else: give up instead, retry next run.
SELECT set_config('lock_timeout', :timeout, true)
