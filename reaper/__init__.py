"""The jobfn reaper: archives finished jobs and deletes them once their retention has passed.

Run it with ``python -m reaper`` (or ``jobfn-reaper``), typically from a CronJob.
"""
