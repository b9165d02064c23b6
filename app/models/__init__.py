from app.models.base import Base
from app.models.job import Job, JobStatus
from app.models.revoked_token import RevokedToken
from app.models.user import User

__all__ = ["Base", "Job", "JobStatus", "RevokedToken", "User"]
